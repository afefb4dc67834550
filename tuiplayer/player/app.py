"""The player's screen: a Textual app over a `Player` (see core.py).

The app reads the player's state on a timer (15 times a second) and sets its widgets'
attributes; keys call the player's actions. What the separation process says (model loaded,
blocks done, errors) is taken on the same timer (`Player.poll`) and turned into notices.
`make_app` is the one way to open the player: the command line, the tests and the bench use it.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tuiplayer.audio.io import Audio
from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.errors import TuiplayerError
from tuiplayer.files import describe_os_error
from tuiplayer.modelstore import ModelCard
from tuiplayer.playback.output import LATENCY_S
from tuiplayer.player import recall
from tuiplayer.player.core import GAIN_STEP_DB, Player, format_time
from tuiplayer.player.keys import KEYS, display
from tuiplayer.player.spectrum import SpectrumColumns
from tuiplayer.player.widgets import Spectrogram, StemStrip, TextLine, Transport
from tuiplayer.separation.cache import StemCache
from tuiplayer.separation.engine import AheadFailed, AheadProgress, AheadReady, Failed, Finished, FromCache, Notice
from tuiplayer.separation.process import Stopped
from tuiplayer.separation.separator import Predict

MIN_WIDTH, MIN_HEIGHT = 80, 24
STARTUP_PROBE_LINE = "tuiplayer: window drawn, sound started"
REFRESH_HZ = 10
SPECTROGRAM_HOPS_PER_COLUMN = 8
"""Each spectrogram column is 6 hops (139 ms): 80 columns show 11 s, and the view scrolls one
column about 7 times a second. It is redrawn only when it scrolls (or its source changes):
redrawing a 120-column spectrogram costs the screen's thread ~0.15 s a second at 15 Hz."""


class HelpScreen(ModalScreen[None]):
    """Every key, as mapped now."""

    BINDINGS: ClassVar[list[Binding]] = [Binding("escape,question_mark,q", "dismiss", "close")]

    def __init__(self, keymap: dict[str, str]) -> None:
        super().__init__()
        self.keymap = keymap

    def compose(self) -> ComposeResult:
        rows = "\n".join(f"  {display(self.keymap.get(key.id, key.keys)):<22} {key.description}" for key in KEYS)
        with Vertical(id="help"):
            yield Label("Keys", classes="title")
            yield Static(rows)
            yield Label("Remap them in ~/.config/tuiplayer/keys.toml ([keys] id = \"key\"). Esc closes.", markup=False,
                        classes="hint")


class ExportScreen(ModalScreen[tuple[Path, str] | None]):
    """Where to export, and as what: returns (folder, format) or None."""

    BINDINGS: ClassVar[list[Binding]] = [Binding("escape", "dismiss", "cancel")]

    def __init__(self, folder: Path, song_name: str) -> None:
        super().__init__()
        self.folder, self.song_name = folder, song_name

    def compose(self) -> ComposeResult:
        with Vertical(id="export"):
            yield Label("Export the remix, the four stems and a Stems file for DJ software", classes="title")
            yield Label(f"into <folder>/{self.song_name}/ — remix, {', '.join(STEMS)}, "
                        f"{self.song_name}.stem.mp4", classes="hint")
            yield Input(str(self.folder), id="folder")
            with Horizontal(id="export-buttons"):
                yield Button("FLAC", id="flac", variant="primary")
                yield Button("WAV", id="wav")
                yield Button("Cancel", id="cancel")

    @on(Button.Pressed)
    def chosen(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        else:
            self.dismiss((Path(self.query_one("#folder", Input).value).expanduser(), str(event.button.id)))

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.dismiss((Path(self.query_one("#folder", Input).value).expanduser(), "flac"))


class SongListScreen(ModalScreen[int | None]):
    """The session's songs, each with what the player knows of its separation; enter opens one."""

    BINDINGS: ClassVar[list[Binding]] = [Binding("escape,s", "dismiss", "close")]

    def __init__(self, queue: SongQueue, current_state: str) -> None:
        super().__init__()
        self.queue, self.current_state = queue, current_state

    def compose(self) -> ComposeResult:
        with Vertical(id="songs"):
            yield Label(f"Songs ({len(self.queue.paths)}) — enter plays one, esc closes", classes="title")
            options = []
            for i, path in enumerate(self.queue.paths):
                state = self.current_state if i == self.queue.index else self.queue.states.get(i, "")
                mark = "▶ " if i == self.queue.index else "  "
                options.append(Option(f"{mark}{i + 1}. {path.name}  {state}", id=str(i)))
            yield OptionList(*options, id="song-list")

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = self.queue.index

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id or 0))


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[Binding]] = [Binding("y", "answer(True)", "yes"),
                                         Binding("n,escape", "answer(False)", "no")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Label(self.question)
            yield Label("y: yes   n: no", classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


@dataclass
class SongQueue:
    """The songs of a session (tuiplayer FILE_OR_FOLDER_OR_M3U...) and where the player is in
    them; states: what the player knows of each song it has opened ("separated", "58 %", …)."""

    paths: list[Path]
    index: int = 0
    states: dict[int, str] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    @property
    def has_next(self) -> bool:
        return self.index + 1 < len(self.paths)


def make_app(path: Path, audio: Audio, cards: list[ModelCard], load_model: Callable[[ModelCard], Predict], *,
             device: int | str | None = None, sound: bool = True, cache: StemCache | None = None,
             keymap: dict[str, str] | None = None, mute: tuple[int, ...] = (),
             memory: Path | None = None, queue: SongQueue | None = None,
             latency: float = LATENCY_S, tempo: float | None = None, semitones: int | None = None) -> PlayerApp:
    """The player on one song, its separation and sound processes started (forked here, before
    the screen's threads): cards are the active model and its optional A/B partner, load_model
    makes a card's Predict in the separation process; mute, tempo, semitones: asked for from the
    start; else the song comes back as it was left (player.recall; memory: its folder, default
    the XDG one)."""
    following = queue.paths[queue.index + 1] if queue is not None and queue.has_next else None
    player = Player(path, audio, cards, load_model, cache=cache, following=following)
    player.start(device, sound, latency)
    key = player.content
    remembered = recall.recall(key, player.duration_s, memory)
    if remembered is not None:
        player.restore(remembered)
    for stem in mute:  # asked for now: over what was remembered
        if not player.muted[stem]:
            player.toggle_mute(stem)
    if tempo is not None or semitones is not None:
        player.set_speed(player.tempo if tempo is None else tempo,
                         player.semitones if semitones is None else semitones)
    return PlayerApp(player, keymap=keymap, song_key=key, memory=memory, queue=queue)


class PlayerApp(App[int]):
    """The player's screen over an open `Player` (see make_app); it closes the player when it ends."""

    CSS_PATH = "player.tcss"
    TITLE = "tuiplayer"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[Binding]] = [
        Binding(key.keys, key.action, key.footer or key.description, show=bool(key.footer), id=key.id)
        for key in KEYS
    ]

    def __init__(self, player: Player, *, keymap: dict[str, str] | None = None, song_key: str | None = None,
                 memory: Path | None = None, queue: SongQueue | None = None) -> None:
        super().__init__()
        self.player = player
        self.song_key, self.memory = song_key, memory
        self.queue = queue or SongQueue([player.path])
        self.go_to: int | None = None
        """The song to open next when this screen ends (None: the player ends)."""
        self.keymap = keymap or {}
        self.view_stem = False
        self._drawn: tuple[object, ...] = ()  # the spectrogram's (source, first column, shape) as last drawn
        self._columns = SpectrumColumns(SIGNAL.hop_length * SPECTROGRAM_HOPS_PER_COLUMN)
        self.startup_probe = False

    # ---- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Container(id="main"):
            yield TextLine(id="song")
            yield TextLine(id="models")
            yield Spectrogram(id="spectrogram")
            yield TextLine(id="view")
            with Vertical(id="strips"):
                for j, stem in enumerate(STEMS):
                    strip = StemStrip(id=f"strip-{stem}")
                    strip.stem, strip.number = stem, j + 1
                    yield strip
            yield Transport(id="transport")
        yield Static(f"Terminal too small: tuiplayer needs at least {MIN_WIDTH}×{MIN_HEIGHT}.\n"
                     "Enlarge the window (q quits).", id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        if self.keymap:
            self.set_keymap(self.keymap)
        if self.player.transport.note:
            self.notify(self.player.transport.note, severity="warning", timeout=8)
        for warning in self.player.audio.source.warnings:  # e.g. a file damaged part-way
            self.notify(warning, severity="warning", timeout=10)
        for notice in self.queue.notices:  # e.g. a playlist's missing entries, a song that did not open
            self.notify(notice, severity="warning", timeout=10)
        self.queue.notices.clear()
        self._fit(self.size.width, self.size.height)
        self.call_after_refresh(self.refresh_state)
        self.set_interval(1 / REFRESH_HZ, self.refresh_state)
        self.call_after_refresh(_freeze_garbage)
        if self.startup_probe:  # `tuiplayer bench`: report the first drawn screen, and leave
            self.call_after_refresh(self._probed)



    def _probed(self) -> None:
        print(STARTUP_PROBE_LINE, flush=True)
        os._exit(0)  # at once (the separation and sound processes end when their pipes close)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width, event.size.height)

    def _fit(self, width: int, height: int) -> None:
        self.set_class(width < MIN_WIDTH or height < MIN_HEIGHT, "-too-small")

    # ---- reading the player's state ---------------------------------------------------------
    def refresh_state(self) -> None:
        """Read the player's state into the main screen's widgets (also under a dialog)."""
        if not self.screen_stack:  # the app is shutting down (a timer can fire meanwhile)
            return
        with contextlib.suppress(NoMatches):  # the screen is still being built, or taken down
            self._refresh_state()

    def _refresh_state(self) -> None:
        player = self.player
        main = self.screen_stack[0]
        self._take_events()
        problem = player.transport.check()
        if problem:
            self.notify(problem, severity="warning", timeout=10)
        queue = self.queue
        place = f"[dim]{queue.index + 1}/{len(queue.paths)}[/dim]  " if len(queue.paths) > 1 else ""
        following = ""
        if queue.has_next:
            ready = ", stems ready" if player.ahead == "separated ahead" else ""
            following = f"  [dim]next: {_escape(queue.paths[queue.index + 1].name)} (>{ready})[/dim]"
            if player.ahead:
                queue.states[queue.index + 1] = player.ahead
        self._show(main, "#song", f"{place}[b]{_escape(player.path.name)}[/b]  {format_time(player.duration_s)}  "
                   f"[dim]{player.audio.source.sample_rate} Hz, {player.audio.source.channels} ch[/dim]{following}")
        if player.ended and player.playing and queue.has_next and self.go_to is None:
            self._open(queue.index + 1)  # the next song starts by itself
        self._show(main, "#models", self._models_line())
        gains, soloing = player.gains_db, any(player.soloed)
        levels = player.levels()
        for j, stem in enumerate(STEMS):
            strip = main.query_one(f"#strip-{stem}", StemStrip)
            strip.gain_db, strip.muted, strip.soloed = gains[j], player.muted[j], player.soloed[j]
            strip.silenced = soloing and not player.soloed[j]
            strip.selected = j == player.selected
            strip.level_db = levels[j]
        transport = main.query_one(Transport)
        transport.playing, transport.ended = player.playing, player.ended
        transport.speed = player.speed_label()
        # the position as far as the transport shows it (whole seconds, one bar cell): it redraws
        # only when that changes
        per_second = math.ceil(max(1, transport.size.width) / max(player.duration_s, 1.0))
        transport.position_s = math.floor(player.position_s * per_second) / per_second
        transport.duration_s = player.duration_s
        transport.loop = None if player.loop is None else tuple(s / SIGNAL.sample_rate for s in player.loop)
        transport.loop_start = None if player.loop_start is None else player.loop_start / SIGNAL.sample_rate
        transport.separated = self._separated_cells(transport.size.width)
        self._draw_spectrogram()

    def _models_line(self) -> str:
        parts = []
        for index, state in enumerate(self.player.models):
            label = "AB"[index] if len(self.player.models) > 1 else "model"
            progress = {
                "loading": "loading…", "waiting": "waiting",
                "separating": f"separating {100 * state.done // max(state.total, 1)} %",
                "done": "separated", "failed": "failed: playing the original mix",
            }[state.status]
            text = f"{label}: {_escape(state.card.name)} v{_escape(state.card.version)} ({progress})"
            if state.card.in_other:
                text += f" {', '.join(state.card.in_other)} in other"
            parts.append(f"[reverse b] {text} [/]" if index == self.player.active else f"[dim]{text}[/dim]")
        if len(self.player.models) < 2:
            parts.append("[dim]no A/B partner (--ab MODEL)[/dim]")
        playing = "stems" if self.player.separated() else "original mix"
        return "  ".join(parts) + f"  [dim]▸ {playing}[/dim]"

    def _separated_cells(self, width: int) -> tuple[bool, ...]:
        """For each of `width` cells of the position bar: is that stretch of the song separated?"""
        cells = max(1, width)
        frames = self.player.buffers[self.player.active].frames_ready
        edges = np.minimum(np.arange(cells) * len(frames) // cells, len(frames) - 1)
        return tuple(np.minimum.reduceat(frames, edges).tolist())

    def _draw_spectrogram(self) -> None:
        main = self.screen_stack[0]
        widget = main.query_one(Spectrogram)
        width, height = widget.size.width, widget.size.height
        if width == 0 or height == 0:
            return
        player = self.player
        hop = self._columns.hop
        playhead_column = width // 4
        first = player.position // hop - playhead_column
        key, label = "mix", "mix"
        audio = lambda start, stop: (player.samples, 0)  # noqa: E731
        if self.view_stem:
            stem, half = player.selected, SIGNAL.n_fft // 2
            lo, hi = max(0, first * hop - half), (first + width) * hop + half
            if not player.buffers[player.active].ready(lo, hi):
                label = f"{STEMS[stem]} (not separated here yet: showing the mix)"
            else:
                key, label = (player.active, stem), STEMS[stem]
                audio = lambda start, stop: (  # noqa: E731
                    None if (piece := player.stem_audio(stem, start, stop)) is None else (piece, max(0, start)))
        self._show(main, "#view", f"[dim]spectrogram: {label}  (v: mix / selected stem)    "
                                  f"sound: {_escape(player.transport.description)}[/dim]")
        image = self._columns.image(key, audio, first, width, 2 * height)
        if (key, first, image.shape) != self._drawn or not np.array_equal(image, widget.image):
            self._drawn = (key, first, image.shape)
            widget.image = image
        widget.playhead = playhead_column

    def _show(self, screen: Screen, selector: str, text: str) -> None:
        """Set a line of text (it redraws only when it changed)."""
        screen.query_one(selector, TextLine).text = text

    def _take_events(self) -> None:
        for event in self.player.poll():
            if isinstance(event, AheadProgress | AheadReady):
                continue  # (the song list and the song line say it)
            if isinstance(event, AheadFailed):
                logging.getLogger(__name__).warning("%s: not separated ahead (%s)", event.path, event.message)
                continue
            if isinstance(event, Stopped):
                self.notify(f"{event.message} — playing the original mix", severity="error", timeout=10)
                continue
            name = event.model.split(":", 1)[-1]
            if isinstance(event, Failed):
                self.notify(f"{name}: {event.message} — playing the original mix", severity="error", timeout=10)
            elif isinstance(event, Notice):
                self.notify(f"{name}: {event.message}", severity="warning", timeout=8)
            elif isinstance(event, FromCache):
                self.notify(f"{name}: stems from the cache", timeout=3)
            elif isinstance(event, Finished):
                self.notify(f"{name}: the whole song is separated", timeout=3)

    # ---- actions -----------------------------------------------------------------------------
    def action_toggle_play(self) -> None:
        self.player.toggle_play()

    def action_seek(self, seconds: float) -> None:
        self.player.seek_by(seconds)

    def action_mute(self, stem: int) -> None:
        self.player.toggle_mute(stem)

    def action_solo(self, stem: int) -> None:
        self.player.toggle_solo(stem)

    def action_select(self, step: int) -> None:
        self.player.select(step)

    def action_gain(self, direction: int) -> None:
        self.player.change_gain(direction * GAIN_STEP_DB)

    def action_reset_mix(self) -> None:
        self.player.reset_mix()

    def action_switch_model(self) -> None:
        if not self.player.switch_model():
            self.notify("no A/B partner: start with --ab MODEL (tuiplayer models lists them)", timeout=5)

    def action_loop(self) -> None:
        self.notify(self.player.toggle_loop(), timeout=3)

    def action_tempo(self, steps: int) -> None:
        self._speed(self.player.change_tempo(steps))

    def action_pitch(self, semitones: int) -> None:
        self._speed(self.player.change_pitch(semitones))

    def action_own_speed(self) -> None:
        self._speed(self.player.reset_speed())

    def _speed(self, refusal: str | None) -> None:
        """The transport line shows the tempo and pitch; only a refusal needs words."""
        if refusal:
            self.notify(refusal, severity="warning", timeout=8)
        self.refresh_state()

    def action_toggle_view(self) -> None:
        self.view_stem = not self.view_stem

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.keymap))

    def action_export(self) -> None:
        try:
            self.player.export_stems()
        except TuiplayerError as error:
            self.notify(f"cannot export yet: {error}", severity="warning", timeout=6)
            return
        self.push_screen(ExportScreen(self.player.path.parent, _song_name(self.player.path)), self._export_to)

    def _export_to(self, choice: tuple[Path, str] | None) -> None:
        if choice is None:
            return
        from tuiplayer.separation import export

        folder, fmt = choice
        try:
            paths = export.export_paths(folder, self.player.path, fmt, tempo=self.player.tempo,
                                        semitones=self.player.semitones)
            export.check_writable(paths.values(), force=True)  # existing files: asked below
            taken = [p for p in paths.values() if p.exists()]
        except (TuiplayerError, OSError) as error:
            message = describe_os_error(error) if isinstance(error, OSError) else str(error)
            self.notify(f"cannot export there: {message}", severity="error", timeout=10)
            return
        if not taken:
            self._write_export(paths, False)
            return
        question = f"{len(taken)} file{'s' if len(taken) > 1 else ''} exist in {taken[0].parent}. Overwrite?"
        self.push_screen(ConfirmScreen(question), lambda yes: self._write_export(paths, True) if yes else None)

    @work(thread=True, exclusive=True, group="export")
    def _write_export(self, paths: dict[str, Path], force: bool) -> None:
        from tuiplayer.separation import export

        player = self.player
        try:
            export.write_export(player.export_stems(), player.effective_gains(), player.audio.source, paths,
                                tempo=player.tempo, semitones=player.semitones, force=force)
        except TuiplayerError as error:
            self.call_from_thread(self.notify, f"export failed: {error}", severity="error", timeout=10)
            return
        except Exception as error:  # an export must never end the player: a notice, the song plays on
            logging.getLogger(__name__).exception("export failed")
            self.call_from_thread(self.notify, f"export failed ({type(error).__name__}: {error})",
                                  severity="error", timeout=10)
            return
        self.call_from_thread(self.notify, f"exported {paths['remix'].name}, the stems and "
                              f"{paths['ni'].name} to {paths['remix'].parent}", timeout=6)

    def action_quit(self) -> None:
        self.exit(0)

    def action_song(self, step: int) -> None:
        """`>` the next song, `<` the previous one (from the start of a song: `<` past 3 s
        starts this one over, as players do)."""
        if step < 0 and self.player.position_s > 3.0:
            self.player.seek_to(0.0)
            return
        target = self.queue.index + step
        if not 0 <= target < len(self.queue.paths):
            self.notify("no next song" if step > 0 else "this is the first song", timeout=3)
            return
        self._open(target)

    def action_songs(self) -> None:
        self.push_screen(SongListScreen(self.queue, self._song_state()), self._chosen_song)

    def _chosen_song(self, index: int | None) -> None:
        if index is not None and index != self.queue.index:
            self._open(index)

    def _open(self, index: int) -> None:
        self.go_to = index
        self.exit(0)

    def _song_state(self) -> str:
        state = self.player.models[self.player.active]
        if state.status == "done":
            return "separated"
        if state.status == "failed":
            return "failed"
        return f"{100 * state.done // max(state.total, 1)} % separated" if state.total else "not separated"

    def on_unmount(self) -> None:
        self.queue.states[self.queue.index] = self._song_state()
        if self.song_key is not None:
            problem = recall.remember(self.song_key, self.player.song_state(), self.memory)
            if problem:
                logging.getLogger(__name__).warning(problem)
        self.player.close()


def _freeze_garbage() -> None:
    """Move every object alive now out of the garbage collector's sight (gc.freeze).

    The audio callback needs the GIL every 23 ms; a full collection over the tens of
    thousands of objects a Textual screen holds takes ~50 ms and happened every ~1.3 s,
    each one an audible dropout. Frozen, the longest GIL hold seen fell from 51 to 23 ms."""
    gc.collect()
    gc.freeze()


def _song_name(path: Path) -> str:
    return path.name.removesuffix(".stem.mp4") if path.name.endswith(".stem.mp4") else path.stem


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
