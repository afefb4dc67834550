"""The player's widgets. Each is drawn from attributes its parent sets (attributes down);
none of them touches the Player or the audio.

TextLine    one line of text that redraws only when it changes
StemStrip   name, fader with its dB value, mute/solo flags, level meter (one line)
Spectrogram the mix or one stem around the playhead, colour, two bands per text row (Line API)
Transport   play state, time / duration, a position bar showing how far separation has got
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

METER_FLOOR_DB = -60.0
FADER_MIN_DB, FADER_MAX_DB = -30.0, 12.0


def _bar(fraction: float, width: int) -> str:
    """A horizontal bar of `width` cells filled to `fraction`, in eighths."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if part else ""
    return ("█" * full + partial).ljust(width)


class TextLine(Widget):
    """One line of text (markup). Setting `text` redraws the line only when it changed, and
    never lays out the screen again (a Static's update does, ~3 ms each time)."""

    DEFAULT_CSS = "TextLine { height: 1; }"

    text: reactive[str] = reactive("")

    def render(self) -> Text:
        text = Text.from_markup(self.text, overflow="ellipsis")
        text.no_wrap = True
        return text


@lru_cache(maxsize=64)
def _style(spec: str) -> Style:
    return Style.parse(spec) if spec else Style()


class StemStrip(Widget):
    """One stem's strip. Set its reactives; it redraws itself (a line of segments, drawn
    without Textual's markup and wrapping: it redraws ~15 times a second while a meter moves)."""

    DEFAULT_CSS = "StemStrip { height: 1; }"

    stem: reactive[str] = reactive("")
    gain_db: reactive[float] = reactive(0.0)
    muted: reactive[bool] = reactive(False)
    soloed: reactive[bool] = reactive(False)
    silenced: reactive[bool] = reactive(False)  # another stem is soloed
    selected: reactive[bool] = reactive(False)
    level_db: reactive[float] = reactive(-math.inf)
    number: reactive[int] = reactive(1)

    def parts(self) -> list[tuple[str, str]]:
        """The line as (text, style) pieces."""
        width = self.size.width
        meter_width = max(6, (width - 38) // 2)
        fader_width = max(6, width - 38 - meter_width)
        off = self.muted or self.silenced
        fraction = (max(self.gain_db, FADER_MIN_DB) - FADER_MIN_DB) / (FADER_MAX_DB - FADER_MIN_DB)
        gain = "  −∞ dB" if self.gain_db <= FADER_MIN_DB else f"{self.gain_db:+5.1f} dB".replace("-", "−")
        level = 0.0 if self.level_db == -math.inf else (self.level_db - METER_FLOOR_DB) / -METER_FLOOR_DB
        lit = _bar(level, meter_width)
        green = int(meter_width * 0.7)
        label = "   −∞" if self.level_db == -math.inf else f"{max(self.level_db, -99):5.0f}"
        return [
            ("▶ " if self.selected else "  ", "bold"),
            (f"{self.number} {self.stem:<7}", "bold" if self.selected else ""),
            (" " + _bar(fraction, fader_width), "grey50" if off else "cyan"),
            (f" {gain:>8} ", ""),
            (" M " if self.muted else "   ", "bold black on red" if self.muted else ""),
            (" S " if self.soloed else "   ", "bold black on yellow" if self.soloed else ""),
            (" ", ""),
            (lit[:green], "green"),
            (lit[green : meter_width - 2], "yellow"),
            (lit[meter_width - 2 :], "red"),
            (f" {label}", "grey62"),
        ]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y:
            return Strip.blank(width)
        return Strip([Segment(text, _style(spec)) for text, spec in self.parts() if text]).crop_extend(0, width, None)

    def render(self) -> Text:
        """The same line as Text (for anything that asks a widget for its render)."""
        text = Text(no_wrap=True, overflow="crop")
        for piece, spec in self.parts():
            text.append(piece, style=spec or None)
        return text


PALETTE_SIZE = 20
"""Colour steps from silence to loud (fewer steps: longer runs of equal cells, cheaper to draw)."""


def _palette() -> list[Color]:
    """Colours from silence to loud: black, blue, purple, red, orange, yellow, white."""
    stops = [(0, 0, 0), (20, 20, 90), (110, 30, 140), (200, 40, 60), (240, 130, 30), (250, 220, 60),
             (255, 255, 230)]
    colours = []
    for i in range(PALETTE_SIZE):
        x = i / (PALETTE_SIZE - 1) * (len(stops) - 1)
        k = min(int(x), len(stops) - 2)
        t = x - k
        rgb = [round(a + (b - a) * t) for a, b in zip(stops[k], stops[k + 1], strict=True)]
        colours.append(Color.from_rgb(*rgb))
    return colours


PALETTE = _palette()


@lru_cache(maxsize=2048)
def _cell_style(top: int, bottom: int) -> Style:
    return Style(color=PALETTE[top], bgcolor=PALETTE[bottom])


class Spectrogram(Widget):
    """A scrolling spectrogram: `image` (columns, bands) of levels in 0..1, bands low → high.

    Each text row shows two bands with the upper half block ▀ (foreground: the upper band,
    background: the lower one); each column is one slice of time, the playhead at `playhead`.
    """

    DEFAULT_CSS = "Spectrogram { height: 1fr; min-height: 3; }"

    image: reactive[np.ndarray | None] = reactive(None, always_update=True)
    playhead: reactive[int] = reactive(0)

    def render_line(self, y: int) -> Strip:
        width, height = self.size.width, self.size.height
        image = self.image
        if image is None or height == 0:
            return Strip.blank(width)
        # text row y (0 at the top) shows bands 2·(height−1−y)+1 (upper) and 2·(height−1−y)
        low = 2 * (height - 1 - y)
        if low + 1 >= image.shape[1]:  # drawn for another size; the next refresh fits
            return Strip.blank(width)
        levels = np.clip((image[:width, [low + 1, low]] * (len(PALETTE) - 1)).astype(int), 0, len(PALETTE) - 1)
        # one segment per run of equal cells: the screen's drawing costs per segment
        segments = []
        cells = levels.tolist()
        x = 0
        while x < len(cells):
            top, bottom = cells[x]
            if x == self.playhead:  # a thin white line over the lower band's colour
                segments.append(Segment("│", Style(color="white", bgcolor=PALETTE[bottom])))
                x += 1
                continue
            run = x + 1
            while run < len(cells) and run != self.playhead and cells[run] == cells[x]:
                run += 1
            segments.append(Segment("▀" * (run - x), _cell_style(top, bottom)))
            x = run
        if len(segments) < width:
            segments.append(Segment(" " * (width - len(segments))))
        return Strip(segments, width)


class Transport(Widget):
    """Play state, time, and a bar: played ━, separated ─ (green), not yet separated ┄."""

    DEFAULT_CSS = "Transport { height: 1; }"

    playing: reactive[bool] = reactive(False)
    ended: reactive[bool] = reactive(False)
    position_s: reactive[float] = reactive(0.0)
    duration_s: reactive[float] = reactive(0.0)
    separated: reactive[tuple[bool, ...]] = reactive(())  # per bar cell: separated there
    loop: reactive[tuple[float, float] | None] = reactive(None)
    loop_start: reactive[float | None] = reactive(None)
    speed: reactive[str] = reactive("")  # tempo and pitch when not the song's own ("80 %, +2 st")

    def render(self) -> Text:
        from tuiplayer.player.core import format_time

        width = self.size.width
        state = "■" if self.ended else ("▶" if self.playing else "❚❚")
        speed = f" [{self.speed}]" if self.speed else ""
        clock = f" {state} {format_time(self.position_s)} / {format_time(self.duration_s)}{speed} "
        text = Text(clock, no_wrap=True, overflow="crop", style="bold")
        cells = max(1, width - len(clock) - 1)
        played = int(cells * self.position_s / self.duration_s) if self.duration_s else 0
        loop_cells = None
        if self.loop is not None and self.duration_s:
            loop_cells = (int(cells * self.loop[0] / self.duration_s), int(cells * self.loop[1] / self.duration_s))
        mark = int(cells * self.loop_start / self.duration_s) if self.loop_start is not None and self.duration_s else -1
        separated = self.separated
        for x in range(cells):
            done = separated[x * len(separated) // cells] if separated else False
            if x == played:
                text.append("●", style="bold white")
            elif x == mark:
                text.append("[", style="bold magenta")
            elif x < played:
                text.append("━", style="cyan")
            else:
                text.append("─" if done else "┄", style="green" if done else "grey37")
            if loop_cells and loop_cells[0] <= x <= loop_cells[1]:
                text.stylize("on grey23", len(text) - 1, len(text))
        return text
