"""The player's screen: a Textual app over a `Session` and its current `Player` (see core.py).

The app reads the player's state on a timer (10 times a second) and sets its widgets'
attributes; keys call the player's actions. What the separation process says (model loaded,
blocks done, errors) is taken on the same timer (`Session.poll`) and turned into notices.

Songs: the next one of the session is decoded in a worker thread once the current one is
separated (or PREPARE_S before its end), opened in the session (separated ahead) and queued
behind the current one, so that it follows it without a gap; the screen then follows the sound
into it. `>`, `<` and the song list play another song at once (decoded first where it is not
open). `make_app` is the one way to open the player: the command line, the tests and the bench
use it.
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

from tuiplayer.audio.io import Audio, load
from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.errors import TuiplayerError
from tuiplayer.files import describe_os_error
from tuiplayer.modelstore import ModelCard
from tuiplayer.player import recall
from tuiplayer.player.core import GAIN_STEP_DB, Player, Session, format_time
from tuiplayer.player.keys import KEYS, display
from tuiplayer.player.spectrum import SpectrumColumns
from tuiplayer.player.widgets import Spectrogram, StemStrip, TextLine, Transport
from tuiplayer.separation.cache import StemCache
from tuiplayer.separation.engine import Failed, Finished, FromCache, Notice
from tuiplayer.separation.process import Stopped
from tuiplayer.separation.separator import Predict

MIN_WIDTH, MIN_HEIGHT = 80, 24
STARTUP_PROBE_LINE = "tuiplayer: window drawn, sound started"
REFRESH_HZ = 10
SPECTROGRAM_HOPS_PER_COLUMN = 8
"""Each spectrogram column is 6 hops (139 ms): 80 columns show 11 s, and the view scrolls one
column about 7 times a second. It is redrawn only when it scrolls (or its source changes):
redrawing a 120-column spectrogram costs the screen's thread ~0.15 s a second at 15 Hz."""
PREPARE_S = 30.0
"""The next song is decoded and queued at the latest this long (song time) before the current
one ends, else as soon as the current one is separated."""
UNREADABLE = "could not be opened"


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
    them; states: what the player knows of each song ("separated", "58 % separated", …)."""

    paths: list[Path]
    index: int = 0
    states: dict[int, str] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    def neighbour(self, index: int, step: int) -> int | None:
        """The nearest song after (step 1) or before (step −1) `index` that may open, or None."""
        stop = len(self.paths) if step > 0 else -1
        return next((i for i in range(index + step, stop, step) if self.states.get(i) != UNREADABLE), None)

    def following(self) -> int | None:
        """The song after the current one that may open, or None."""
        return self.neighbour(self.index, 1)

    @property
    def has_next(self) -> bool:
        return self.following() is not None


def make_app(songs: list[Path] | SongQueue, cards: list[ModelCard], load_model: Callable[[ModelCard], Predict], *,
             loader: Callable[[Path], Audio] = load, device: int | str | None = None, sound: bool = True,
             cache: StemCache | None = None, keymap: dict[str, str] | None = None, mute: tuple[int, ...] = (),
             memory: Path | None = None, latency: float | None = None, tempo: float | None = None,
             semitones: int | None = None) -> PlayerApp:
    """The player on a session's songs: its sound and separation processes are forked first
    (before any song is decoded and before the screen's threads), then the first song that
    `loader` can decode plays (songs that cannot are skipped, each with a notice; none at all
    is a TuiplayerError). cards: the active model and its optional A/B partner; load_model
    makes a card's Predict in the separation process; mute, tempo, semitones: asked for from
    the start; else a song comes back as it was left (player.recall; memory: its folder,
    default the XDG one)."""
    queue = songs if isinstance(songs, SongQueue) else SongQueue(list(songs))
    session = Session(cards, load_model, cache=cache)
    session.start(device, sound, latency)
    try:
        player = _open_first(session, queue, loader)
    except TuiplayerError:
        session.close()
        raise
    remembered = recall.recall(player.content, player.duration_s, memory)
    if remembered is not None:
        player.restore(remembered)
    for stem in mute:  # asked for now: over what was remembered
        if not player.muted[stem]:
            player.toggle_mute(stem)
    if tempo is not None or semitones is not None:
        player.set_speed(player.tempo if tempo is None else tempo,
                         player.semitones if semitones is None else semitones)
    session.play(player)
    return PlayerApp(session, player, keymap=keymap, memory=memory, queue=queue, loader=loader)


def _open_first(session: Session, queue: SongQueue, loader: Callable[[Path], Audio]) -> Player:
    """The first song from queue.index on that decodes, opened in the session."""
    error: TuiplayerError | None = None
    for index in range(queue.index, len(queue.paths)):
        try:
            audio = loader(queue.paths[index])
        except TuiplayerError as failure:
            error = failure
            queue.states[index] = UNREADABLE
            queue.notices.append(str(failure))
            continue
        queue.index = index
        return session.add(session.load(queue.paths[index], audio))
    assert error is not None
    if len(queue.paths) == 1:
        raise error
    raise TuiplayerError(f"none of the {len(queue.paths)} songs could be opened (the last: {error})")


class PlayerApp(App[int]):
    """The player's screen over an open `Player` (see make_app); it closes the player when it ends."""

    CSS_PATH = "player.tcss"
    TITLE = "tuiplayer"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[Binding]] = [
        Binding(key.keys, key.action, key.footer or key.description, show=bool(key.footer), id=key.id)
        for key in KEYS
    ]

    def __init__(self, session: Session, player: Player, *, keymap: dict[str, str] | None = None,
                 memory: Path | None = None, queue: SongQueue | None = None,
                 loader: Callable[[Path], Audio] = load) -> None:
        super().__init__()
        self.session = session
        self.player = player
        """The current song (the one the sound plays or is about to)."""
        self.memory = memory
        self.queue = queue or SongQueue([player.path])
        self.loader = loader
        self.next: tuple[int, Player] | None = None
        """The song prepared to follow the current one (its index in the queue), queued in the sound."""
        self._opening: tuple[int, bool] | None = None  # (index, whether to play it at once) being decoded
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
        if self.session.transport.note:
            self.notify(self.session.transport.note, severity="warning", timeout=8)
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
        main = self.screen_stack[0]
        self._take_events()
        problem = self.session.transport.check()
        if problem:
            self.notify(problem, severity="warning", timeout=10)
        self._follow_songs()
        player, queue = self.player, self.queue
        place = f"[dim]{queue.index + 1}/{len(queue.paths)}[/dim]  " if len(queue.paths) > 1 else ""
        following = ""
        after = queue.following()
        if after is not None:
            ready = ""
            if self.next is not None and self.next[0] == after:
                ready = ", stems ready" if self.next[1].separation_state == "separated" else ", queued"
            following = f"  [dim]next: {_escape(queue.paths[after].name)} (>{ready})[/dim]"
        self._show(main, "#song", f"{place}[b]{_escape(player.path.name)}[/b]  {format_time(player.duration_s)}  "
                   f"[dim]{player.audio.source.sample_rate} Hz, {player.audio.source.channels} ch[/dim]{following}")
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
            slow = f", {state.speed:.1f}× real time" if self.player.falls_behind(index) else ""
            progress = {
                "loading": "loading…", "waiting": "waiting",
                "separating": f"separating {100 * state.done // max(state.total, 1)} %{slow}",
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
        for player, event in self.session.poll():
            if isinstance(event, Stopped):
                self.notify(f"{event.message} — playing the original mix", severity="error", timeout=10)
                continue
            if player is not self.player:  # the next song, separated ahead: the song line says it
                if isinstance(event, Failed) and player is not None:
                    logging.getLogger(__name__).warning("%s: not separated ahead (%s)", player.path, event.message)
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
        for index, state in enumerate(self.player.models):
            if self.player.falls_behind(index) and not state.said_slow:
                state.said_slow = True
                self.notify(f"{state.card.name} separates {state.speed:.1f}× as fast as the song plays on this "
                            "machine: it cannot keep ahead, so it makes stretches of stems ahead of the playhead "
                            "(the bar shows where; the original mix plays between them). Pause to let it get "
                            "further.", severity="warning", timeout=12)

    # ---- songs -------------------------------------------------------------------------------
    def _follow_songs(self) -> None:
        """Keep the queue's states, follow the sound into the next song, prepare the next one."""
        queue, player = self.queue, self.player
        queue.states[queue.index] = player.separation_state
        if self.next is not None:
            index, following = self.next
            state = following.separation_state
            queue.states[index] = state if state == "not separated" else f"{state} ahead"
            if self.session.transport.moved_on():  # the sound went on into it, without a gap
                self.next = None
                self._adopt(index, following)
                return
        after = queue.following()
        if after is None or self._opening is not None:
            return
        done = all(state.status in ("done", "failed") for state in player.models)
        if self.next is None and (done or player.duration_s - player.position_s < PREPARE_S):
            self._open(after, play=False)  # (queued after the end, it starts as soon as it is open)

    def _open(self, index: int, play: bool) -> None:
        """Decode song `index` in a worker, then play it (play) or queue it after the current one."""
        self._opening = (index, play)
        if play:
            self.notify(f"opening {self.queue.paths[index].name}…", timeout=2)
        self._decode(index)

    @work(thread=True, exclusive=True, group="decode")
    def _decode(self, index: int) -> None:
        """Decode the song and put it in shared memory, off the screen's thread (a 4-minute
        song: ~0.16 s of hashing and copying besides the decoding)."""
        path = self.queue.paths[index]
        try:
            loaded: Player | str = self.session.load(path, self.loader(path))
        except TuiplayerError as error:
            loaded = str(error)
        except Exception as error:  # a song that will not open must never end the player
            logging.getLogger(__name__).exception("cannot open %s", path)
            loaded = f"{path.name}: {type(error).__name__}: {error}"
        self.call_from_thread(self._decoded, index, loaded)

    def _decoded(self, index: int, loaded: Player | str) -> None:
        """Song `index` decoded (or why not): opened in the session, played or queued."""
        if self._opening is None or self._opening[0] != index:  # the listener went elsewhere meanwhile
            if isinstance(loaded, Player):
                loaded.song.close()
            return
        play = self._opening[1]
        self._opening = None
        if isinstance(loaded, str):
            self.queue.states[index] = UNREADABLE
            self.notify(loaded, severity="warning", timeout=10)
            target = self.queue.neighbour(index, 1 if index > self.queue.index else -1)
            if play and target is not None:  # on, in the same direction
                self._open(target, play=True)
            return
        player = self.session.add(loaded)
        remembered = recall.recall(player.content, player.duration_s, self.memory)
        if remembered is not None:
            player.restore(remembered, position=play)  # (a song that follows another starts at its start)
        if play:
            self._drop_next()
            self.session.play(player)
            self._adopt(index, player)
        else:
            self.next = (index, player)
            self.session.queue(player)

    def _play(self, index: int) -> None:
        """Play song `index` now: the prepared next one at once (from where it was left), else
        once it is decoded."""
        if self.next is not None and self.next[0] == index:
            _, player = self.next
            self.next = None
            remembered = recall.recall(player.content, player.duration_s, self.memory)
            if remembered is not None:
                player.restore(remembered)  # (as it was queued, and now its playhead too)
            self.session.play(player)
            self._adopt(index, player)
            return
        self._drop_next()
        self._open(index, play=True)

    def _adopt(self, index: int, player: Player) -> None:
        """`player` (song `index`) is now the current song: the one before is remembered and let go of."""
        previous = self.player
        self.queue.states[self.queue.index] = previous.separation_state
        self._remember(previous)
        self.session.close_song(previous)
        self.player, self.queue.index = player, index
        self._drawn, self._columns = (), SpectrumColumns(self._columns.hop)
        for warning in player.audio.source.warnings:
            self.notify(warning, severity="warning", timeout=10)
        self.refresh_bindings()

    def _drop_next(self) -> None:
        if self.next is not None:
            self.session.close_song(self.next[1])
            self.next = None

    def _remember(self, player: Player) -> None:
        problem = recall.remember(player.content, player.song_state(), self.memory)
        if problem:
            logging.getLogger(__name__).warning(problem)

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
        target = self.queue.neighbour(self.queue.index, step)
        if target is None:
            self.notify("no next song" if step > 0 else "this is the first song", timeout=3)
            return
        self._play(target)

    def action_songs(self) -> None:
        self.push_screen(SongListScreen(self.queue, self.player.separation_state), self._chosen_song)

    def _chosen_song(self, index: int | None) -> None:
        if index is not None and index != self.queue.index:
            self._play(index)

    def on_unmount(self) -> None:
        self._remember(self.player)
        self.session.close()


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
