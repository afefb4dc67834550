"""The player without its screen: what the keys do, and the state the screen shows.

A `Session` lasts as long as the player: the `Transport` (the song playing, its playhead and
mix, and the sound process or silent clock) and the separation process (the active model
and its A/B partner), both forked at launch, before any song is decoded. Songs come and go
in it: `Session.load` puts one in shared memory, `add` hands it to the separation; `play` plays
one now, `queue` one to follow the playing one without a gap; `close_song` lets go of it. At
most the song playing and the next one are open.

`Player` is one open song: its audio, one `StemBuffers` per model, the mix the user set, and
what the separation has done for it. Actions write the mix into the transport whole while it
is the current song; the screen reads `Player`'s attributes, `levels()` and, on its timer,
`Session.poll()`. Nothing here imports Textual or an inference runtime.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuiplayer import stems
from tuiplayer.audio.io import Audio
from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.errors import TuiplayerError
from tuiplayer.modelstore import ModelCard
from tuiplayer.playback import stretch
from tuiplayer.playback.mixer import MixSnapshot
from tuiplayer.playback.output import BLOCK_FRAMES
from tuiplayer.playback.transport import Transport
from tuiplayer.player.recall import END_MARGIN_S, SongState
from tuiplayer.separation.cache import StemCache, content_hash
from tuiplayer.separation.engine import BlocksDone, Event, Failed, Finished, FromCache, ModelReady
from tuiplayer.separation.process import Model, SeparationProcess, Stopped
from tuiplayer.separation.separator import Predict
from tuiplayer.stems import SharedSong

GAIN_STEP_DB = 1.5
"""One press of +/− (dB)."""
GAIN_MIN_DB, GAIN_MAX_DB = -30.0, 12.0
"""Fader range; below the minimum a fader is silent (−∞ dB)."""
SEEK_SHORT_S, SEEK_LONG_S = 5.0, 60.0
TEMPO_STEP = 0.05
"""One press of [ or ] (a share of the song's own tempo); the range is playback.stretch's."""


def db_to_gain(db: float) -> float:
    return 0.0 if db <= GAIN_MIN_DB else float(10 ** (db / 20))


@dataclass
class ModelState:
    """What the screen shows of one model: card, and how far its separation has got."""

    card: ModelCard
    status: str = "waiting"  # waiting, loading, separating, done, failed
    done: int = 0
    total: int = 0
    speed: float | None = None  # seconds of song it separates per second, once measured
    said_slow: bool = False  # the user was told it cannot keep ahead


class Session:
    """The processes of one run of the player and the songs open in them (see the module doc).

    cards: the active model and, optionally, its A/B partner (the same for every song);
    load_model: card → Predict (called in the separation process, which imports the runtime);
    cache: where finished stems are kept (and found again).
    """

    def __init__(self, cards: list[ModelCard], load_model: Callable[[ModelCard], Predict], *,
                 cache: StemCache | None = None) -> None:
        self.cards = cards
        self.transport = Transport()
        self.separation: SeparationProcess | None = None
        self.players: dict[int, Player] = {}
        """The open songs by their number (the current one, and the next one prepared)."""
        self._load_model = load_model
        self._cache = cache
        self._numbers = itertools.count()
        self._closing = threading.Lock()

    def start(self, device: int | str | None = None, sound: bool = True, latency: float | None = None) -> None:
        """Fork the sound process and the separation process: before any song is decoded (a
        child would hold on to every page the parent held when it forked) and before any
        thread starts (the app factory calls this first). An output named by the user that
        cannot be opened ends the program before the screen (the command line says why):
        then there is nothing to separate."""
        self.transport.start(device, sound, latency)
        if device is None or self.transport.error is None:
            models = [Model(_model_key(i, card), card.sha256, functools.partial(self._load_model, card))
                      for i, card in enumerate(self.cards)]
            self.separation = SeparationProcess(models, self.transport.control, self._cache)

    def load(self, path: Path, audio: Audio) -> Player:
        """A song put in shared memory, with its content hash (the costly part of opening a
        song: any thread may do it; no process hears of the song yet). Then `add` it, or
        let go of it with `player.song.close()`."""
        song = SharedSong.create(next(self._numbers), audio.samples, len(self.cards))
        return Player(path, dataclasses.replace(audio, samples=song.audio), song, self.cards, self.transport)

    def add(self, player: Player) -> Player:
        """Open a loaded song in the session: the separation starts on it (its stems start
        coming); it plays once `play`ed or `queue`d."""
        self.players[player.song.song] = player
        if self.separation is not None:
            self.separation.add(player.song, player.content)
        return player

    def play(self, player: Player) -> None:
        """Play `player`'s song now, from its start position, with its mix."""
        self.transport.play(player.song, player.snapshot(), player.start_sample)

    def queue(self, player: Player) -> None:
        """Play `player`'s song from its start right after the current one ends (gapless)."""
        self.transport.queue(player.song, player.snapshot())

    def close_song(self, player: Player) -> None:
        """Let go of a song that is not playing: its separation stops, its memory is freed once
        every process has let go of it."""
        number = player.song.song
        self.players.pop(number, None)
        self.transport.forget(number)
        if self.separation is not None:
            self.separation.forget(number)
        player.song.close()

    def poll(self) -> list[tuple[Player | None, Event | Stopped]]:
        """Take what the separation process said into its songs' state (the screen calls this
        on its timer) and return it, with the song it is about (None: every song), for notices."""
        if self.separation is None:
            return []
        taken: list[tuple[Player | None, Event | Stopped]] = []
        for item in self.separation.events():
            if isinstance(item, Stopped):
                for player in self.players.values():
                    player.separation_stopped()
                taken.append((None, item))
                continue
            number, event = item
            player = self.players.get(number)
            if player is not None:  # (else a song let go of meanwhile)
                player.take(event)
                taken.append((player, event))
        return taken

    def close(self) -> None:
        """End the sound and the separation (safe to call more than once, from any thread)."""
        with self._closing:
            self.transport.close()
            if self.separation is not None:
                self.separation.close()
                self.separation = None


class Player:
    """One open song of a `Session`: path, audio (its samples in shared memory), song (its
    memory, as the processes share it), cards (the active model and its optional partner),
    transport (the session's: the song's mix goes there while it is the current song)."""

    def __init__(self, path: Path, audio: Audio, song: SharedSong, cards: list[ModelCard],
                 transport: Transport) -> None:
        self.path = path
        self.audio = audio
        self.samples = audio.samples
        self.song = song
        self.content = content_hash(self.samples)
        """The song's identity (its decoded audio's hash): the stem cache's key and the key of
        what is remembered of it (player.recall); made once, here."""
        self.duration_s = len(self.samples) / SIGNAL.sample_rate
        self.models = [ModelState(card, status="loading" if i == 0 else "waiting") for i, card in enumerate(cards)]
        self.active = 0
        self.gains_db = [0.0] * len(STEMS)
        self.muted = [False] * len(STEMS)
        self.soloed = [False] * len(STEMS)
        self.selected = 0
        self.playing = True
        self.loop_start: int | None = None
        self.loop: tuple[int, int] | None = None
        self.tempo = 1.0
        self.semitones = 0
        self.buffers = song.stems
        self.transport = transport
        self.start_sample = 0
        """Where the song starts when it is played (a remembered playhead), and its playhead
        while it is not the current song."""

    @property
    def current(self) -> bool:
        """Whether this is the song the transport plays (or is about to)."""
        return self.transport.current == self.song.song

    def take(self, event: Event) -> None:
        """Take one of the separation's events about this song into the models' state."""
        state = self.models[_model_index(event.model)]
        if isinstance(event, ModelReady):
            state.status = "separating"
        elif isinstance(event, BlocksDone):
            state.status, state.done, state.total = "separating", event.done, event.total
            state.speed = event.speed if event.speed is not None else state.speed
        elif isinstance(event, Finished | FromCache):
            state.status = "done"
            state.done = state.total = max(state.total, 1)
        elif isinstance(event, Failed):
            state.status = "failed"

    def separation_stopped(self) -> None:
        """The separation process died: every model not done has failed."""
        for state in self.models:
            if state.status != "done":
                state.status = "failed"

    def falls_behind(self, index: int) -> bool:
        """Whether model `index` separates slower than the song plays now: it cannot keep ahead
        of the playhead (the engine then makes stretches ahead of it)."""
        state = self.models[index]
        return state.status == "separating" and state.speed is not None and state.speed < self.tempo

    @property
    def separation_state(self) -> str:
        """How far the active model has got, for the song list ("separated", "58 % separated", …)."""
        state = self.models[self.active]
        if state.status == "done":
            return "separated"
        if state.status == "failed":
            return "failed"
        return f"{100 * state.done // max(state.total, 1)} % separated" if state.total else "not separated"

    # ---- what the screen reads ------------------------------------------------------------
    @property
    def position(self) -> int:
        """The playhead in samples."""
        return self.transport.position if self.current else self.start_sample

    @property
    def position_s(self) -> float:
        return self.position / SIGNAL.sample_rate

    @property
    def ended(self) -> bool:
        return self.current and self.transport.ended

    def effective_gains(self) -> tuple[float, ...]:
        """Linear gain per stem after mute and solo."""
        soloing = any(self.soloed)
        return tuple(
            0.0 if self.muted[j] or (soloing and not self.soloed[j]) else db_to_gain(self.gains_db[j])
            for j in range(len(STEMS))
        )

    def separated(self, index: int | None = None) -> bool:
        """Whether the active (or given) model's stems play at the playhead now."""
        position = self.position
        return self.buffers[self.active if index is None else index].ready(position, position + BLOCK_FRAMES)

    def stem_audio(self, stem: int, start: int, stop: int) -> np.ndarray | None:
        """Samples [start, stop) of one stem of the active model (n, 2) float32, or None where
        they are not separated yet."""
        buffers = self.buffers[self.active]
        start, stop = max(0, start), min(len(self.samples), stop)
        if stop <= start or not buffers.ready(start, stop):
            return None
        return stems.stem(self.samples[start:stop], buffers.stored[start:stop], stem)

    def levels(self, window_s: float = 0.05) -> list[float]:
        """Each stem's level as heard now (dBFS, RMS over the last window_s; −inf when silent).

        Before the stems exist the meters show what plays: the mix, in every strip."""
        stop = self.position
        start = max(0, stop - int(window_s * SIGNAL.sample_rate))
        gains = self.effective_gains()
        levels = []
        for j in range(len(STEMS)):
            piece = self.stem_audio(j, start, stop)
            if piece is None:
                piece = self.samples[start:stop]
            rms = float(np.sqrt(np.mean(np.square(piece)))) * gains[j] if len(piece) else 0.0
            levels.append(20 * np.log10(rms) if rms > 1e-6 else float("-inf"))
        return levels

    # ---- actions (keys) -------------------------------------------------------------------
    def toggle_play(self) -> None:
        if self.ended:
            self.seek_to(0.0)
            self.playing = True
        else:
            self.playing = not self.playing
        self._publish()

    def seek_by(self, seconds: float) -> None:
        self.seek_to(self.position_s + seconds)

    def seek_to(self, seconds: float) -> None:
        sample = min(int(min(max(seconds, 0.0), self.duration_s) * SIGNAL.sample_rate), len(self.samples))
        if self.current:
            self.transport.seek(sample)
        else:
            self.start_sample = sample

    def toggle_mute(self, stem: int) -> None:
        self.muted[stem] = not self.muted[stem]
        self._publish()

    def toggle_solo(self, stem: int) -> None:
        self.soloed[stem] = not self.soloed[stem]
        self._publish()

    def select(self, step: int) -> None:
        self.selected = (self.selected + step) % len(STEMS)

    def change_gain(self, step_db: float) -> None:
        current = max(self.gains_db[self.selected], GAIN_MIN_DB)
        self.gains_db[self.selected] = min(max(current + step_db, GAIN_MIN_DB), GAIN_MAX_DB)
        self._publish()

    def change_tempo(self, steps: int) -> str | None:
        """Slower (steps < 0) or faster by TEMPO_STEP a step, pitch kept (set_speed)."""
        return self.set_speed(self.tempo + steps * TEMPO_STEP, self.semitones)

    def change_pitch(self, semitones: int) -> str | None:
        """Up or down by semitones, tempo kept (set_speed)."""
        return self.set_speed(self.tempo, self.semitones + semitones)

    def reset_speed(self) -> str | None:
        """Back to the song's own tempo and pitch."""
        return self.set_speed(1.0, 0)

    def set_speed(self, tempo: float, semitones: int) -> str | None:
        """Tempo (1.0 = the song's own) and pitch (semitones), within playback.stretch's ranges.
        Where they could not be heard (sound plays, but Rubber Band is missing) nothing changes
        and the reason is returned; else None."""
        if self.transport.audible and not stretch.available():
            return stretch.MISSING
        self.tempo, self.semitones = stretch.clamp_tempo(tempo), stretch.clamp_semitones(semitones)
        self._publish()
        return None

    def speed_label(self) -> str:
        """The tempo in percent and the pitch in semitones ("80 %, +2 st"); "" at the song's own."""
        if (self.tempo, self.semitones) == (1.0, 0):
            return ""
        pitch = f"{self.semitones:+d}" if self.semitones else "0"
        return f"{round(100 * self.tempo)} %, {pitch} st"

    def song_state(self) -> SongState:
        """The song as it is now, for player.recall: mix, tempo and pitch, loop, playhead."""
        rate = SIGNAL.sample_rate
        return SongState(duration_s=self.duration_s, position_s=self.position_s, gains_db=tuple(self.gains_db),
                         muted=tuple(self.muted), soloed=tuple(self.soloed),
                         loop_s=None if self.loop is None else (self.loop[0] / rate, self.loop[1] / rate),
                         tempo=self.tempo, semitones=self.semitones)

    def restore(self, state: SongState, position: bool = True) -> None:
        """Come back to a remembered state (with its playhead unless `position` is False). A
        playhead left near the end starts the song over."""
        rate = SIGNAL.sample_rate
        self.gains_db = [min(max(g, GAIN_MIN_DB), GAIN_MAX_DB) for g in state.gains_db]
        self.muted, self.soloed = list(state.muted), list(state.soloed)
        self.set_speed(state.tempo, state.semitones)
        if state.loop_s is not None and 0 <= state.loop_s[0] < state.loop_s[1] <= self.duration_s:
            self.loop = (int(state.loop_s[0] * rate), int(state.loop_s[1] * rate))
        self._publish()
        if position and state.position_s < self.duration_s - END_MARGIN_S:
            self.seek_to(state.position_s)

    def reset_mix(self) -> None:
        self.gains_db = [0.0] * len(STEMS)
        self.muted = [False] * len(STEMS)
        self.soloed = [False] * len(STEMS)
        self._publish()

    def switch_model(self) -> bool:
        """A/B: the other model plays from the same playhead; False when there is none."""
        if len(self.models) < 2:
            return False
        self.active = 1 - self.active
        self._publish()  # (the separation process reads the active model there too)
        return True

    def toggle_loop(self) -> str:
        """First press marks A, the second B (the loop plays), the third clears it."""
        position = self.position
        if self.loop is not None:
            self.loop, self.loop_start = None, None
            message = "loop cleared"
        elif self.loop_start is None:
            self.loop_start = position
            message = f"loop start at {format_time(position / SIGNAL.sample_rate)}"
        else:
            start, stop = sorted((self.loop_start, position))
            if stop - start < SIGNAL.sample_rate // 10:
                self.loop_start = None
                return "loop too short; cleared"
            self.loop = (start, stop)
            self.loop_start = None
            message = f"looping {format_time(start / SIGNAL.sample_rate)}–{format_time(stop / SIGNAL.sample_rate)}"
        self._publish()
        return message

    # ---- export ---------------------------------------------------------------------------
    def export_stems(self) -> np.ndarray:
        """The active model's stems of the whole song (n_samples, 2, n_stems), for an export;
        TuiplayerError while the song is not all separated."""
        buffers = self.buffers[self.active]
        if not buffers.complete:
            state = self.models[self.active]
            share = f"{100 * state.done // max(state.total, 1)} %" if state.total else "not started"
            raise TuiplayerError(f"{state.card.name} has not separated the whole song yet ({share})")
        return stems.complete(self.samples, buffers.stored)

    # ---- internals --------------------------------------------------------------------------
    def snapshot(self) -> MixSnapshot:
        """The mix as the user set it, as the sound plays it."""
        return MixSnapshot(gains=self.effective_gains(), model=self.active, playing=self.playing, loop=self.loop,
                           tempo=self.tempo, semitones=self.semitones)

    def _publish(self) -> None:
        if self.current:
            self.transport.snapshot = self.snapshot()


def _model_key(index: int, card: ModelCard) -> str:
    """The session's name for model `index` (A and B may be the same model)."""
    return f"{'AB'[index]}:{card.name}"


def _model_index(key: str) -> int:
    return "AB".index(key.split(":", 1)[0])


def format_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
