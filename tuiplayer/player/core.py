"""The player without its screen: what the keys do, and the state the screen shows.

`Player` holds one open song: its audio, the `SongSession` separating it with the active
model and its A/B partner, the `Mixer` the sound comes from, and the sound output: a real
PortAudio stream played by a child process (`AudioProcess`, which then stands in for the
mixer), or a silent clock with --no-audio or when there is no device. The stems are kept in
shared memory from the start, so either can read them. Actions change the mix by replacing
the mixer's snapshot whole; the screen reads `Player`'s
attributes and `levels()` on its own timer. Nothing here imports Textual or TensorFlow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuiplayer.audio.io import Audio
from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.errors import TuiplayerError
from tuiplayer.modelstore import ModelCard
from tuiplayer.playback.mixer import Mixer, MixSnapshot
from tuiplayer.playback.output import BLOCK_FRAMES
from tuiplayer.playback.process import AudioProcess, shared_stem_buffers
from tuiplayer.separation.cache import StemCache
from tuiplayer.separation.engine import BlocksDone, Failed, Finished, ModelReady
from tuiplayer.separation.separator import Predict, SongSeparation, complete_stems
from tuiplayer.separation.session import FromCache, SessionEvent, SongSession

GAIN_STEP_DB = 1.5
"""One press of +/− (dB)."""
GAIN_MIN_DB, GAIN_MAX_DB = -30.0, 12.0
"""Fader range; below the minimum a fader is silent (−∞ dB)."""
SEEK_SHORT_S, SEEK_LONG_S = 5.0, 60.0


def db_to_gain(db: float) -> float:
    return 0.0 if db <= GAIN_MIN_DB else float(10 ** (db / 20))


@dataclass
class ModelState:
    """What the screen shows of one model: card, and how far its separation has got."""

    card: ModelCard
    status: str = "waiting"  # waiting, loading, separating, done, failed
    done: int = 0
    total: int = 0


class SilentClock:
    """Stands in for a sound card: pulls buffers from the mixer in real time and drops them."""

    def __init__(self, source: Mixer, block_frames: int = BLOCK_FRAMES) -> None:
        self.source = source
        self._buffer = np.zeros((block_frames, 2), dtype=np.float32)
        self._period = block_frames / SIGNAL.sample_rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="silent-clock", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        due = time.perf_counter()
        while not self._stop.is_set():
            self.source.fill(self._buffer)
            due += self._period
            self._stop.wait(max(0.0, due - time.perf_counter()))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)


class Player:
    """One song open for playing.

    audio: the decoded song; cards: the active model and, optionally, its A/B partner;
    load_model: card → Predict (runs on the model's worker thread; TensorFlow loads there);
    on_event: called on worker threads with every SessionEvent, after Player has taken it
    into its state (the app forwards it to the UI thread).
    """

    def __init__(
        self,
        path: Path,
        audio: Audio,
        cards: list[ModelCard],
        load_model: Callable[[ModelCard], Predict],
        *,
        on_event: Callable[[SessionEvent], None] | None = None,
        cache: StemCache | None = None,
    ) -> None:
        self.path = path
        self.audio = audio
        self.samples = audio.samples
        self.duration_s = len(self.samples) / SIGNAL.sample_rate
        self.models = [ModelState(card) for card in cards]
        self.active = 0
        self.gains_db = [0.0] * len(STEMS)
        self.muted = [False] * len(STEMS)
        self.soloed = [False] * len(STEMS)
        self.selected = 0
        self.playing = True
        self.loop_start: int | None = None
        self.loop: tuple[int, int] | None = None
        self.output_note = ""
        self._on_event = on_event
        self._stems = [shared_stem_buffers(len(self.samples)) for _ in cards]  # (untouched pages cost nothing)
        self.mixer: Mixer | AudioProcess = Mixer(self.samples, [None] * len(cards))
        self.session = SongSession(self.samples, self._event, cache=cache, playhead=lambda: self.mixer.position)
        self.output: AudioProcess | SilentClock | None = None
        self.output_error: str | None = None
        self._load_model = load_model
        self._started: set[int] = set()
        self._starting = threading.Lock()
        self._publish()

    def start_separation(self) -> None:
        """Give the active model its stems: from the cache, or separated by a worker from the
        playhead. Its A/B partner starts when the active model is done (or fails), or when
        the user switches to it: on 2 cores, two models at once would both be slow.

        The screen calls this once it is drawn: a worker's TensorFlow import takes seconds of
        CPU and would slow the window's first appearance."""
        self._start(self.active)

    def _start(self, index: int) -> None:
        with self._starting:
            if index in self._started:
                return
            self._started.add(index)
        state = self.models[index]
        state.status = "loading"
        self.session.add_model(self._key(index), state.card.sha256,
                               lambda card=state.card: self._load_model(card), buffers=self._stems[index])
        self.mixer.separations = self._separations()

    def _separations(self) -> list[SongSeparation | None]:
        """Each model's separation, None for one not started (the mixer's `separations`)."""
        return [self.separation(i) for i in range(len(self.models))]

    # ---- sound ----------------------------------------------------------------------------
    def start_output(self, device: int | str | None = None, audio: bool = True) -> None:
        """Start the sound: a PortAudio stream in its own process, or the silent clock (no
        audio / no device: `output_error` and `output_note` say why). Call it before threads
        start where possible (the command line does, before the screen): it forks."""
        if audio:
            try:
                self.output = self.mixer = AudioProcess(self.samples, self._stems, device, self.mixer.snapshot)
                return
            except TuiplayerError as error:
                self.output_error = str(error)
                self.output_note = f"{error} — playing silently"
        self.output = SilentClock(self.mixer)  # type: ignore[arg-type]

    def check_output(self) -> str | None:
        """The screen calls this on its timer. If the sound output stopped on its own (a device
        unplugged, a dead sound process), carry on with a silent clock from the same playhead
        and return the notice to show (once); None while all is well."""
        if not (isinstance(self.output, AudioProcess) and self.output.stalled()):
            return None
        stopped, position = self.output, self.output.position
        mixer = Mixer(self.samples, self._separations())
        mixer.position = position
        self.mixer = mixer
        self._publish()
        self.output = SilentClock(mixer)
        threading.Thread(target=stopped.close, daemon=True).start()  # (it may take a while)
        self.output_note = "the sound output stopped (device unplugged?) — playing silently"
        return self.output_note

    def close(self) -> None:
        if self.output is not None:
            self.output.close()
        self.session.close(timeout=2.0)

    # ---- what the screen reads ------------------------------------------------------------
    @property
    def position_s(self) -> float:
        return self.mixer.position / SIGNAL.sample_rate

    @property
    def ended(self) -> bool:
        return self.mixer.ended

    def effective_gains(self) -> tuple[float, ...]:
        """Linear gain per stem after mute and solo."""
        soloing = any(self.soloed)
        return tuple(
            0.0 if self.muted[j] or (soloing and not self.soloed[j]) else db_to_gain(self.gains_db[j])
            for j in range(len(STEMS))
        )

    def separation(self, index: int | None = None) -> SongSeparation | None:
        return self.session.separations.get(self._key(self.active if index is None else index))

    def separated(self, index: int | None = None) -> bool:
        """Whether the active (or given) model's stems play at the playhead now."""
        separation = self.separation(index)
        position = self.mixer.position
        return separation is not None and separation.ready(position, position + BLOCK_FRAMES)

    def stem_audio(self, stem: int, start: int, stop: int) -> np.ndarray | None:
        """Samples [start, stop) of one stem of the active model (n, 2) float32, or None where
        they are not separated yet."""
        separation = self.separation()
        start, stop = max(0, start), min(len(self.samples), stop)
        if separation is None or stop <= start or not separation.ready(start, stop):
            return None
        if stem < len(STEMS) - 1:
            return separation.stored[start:stop, :, stem].astype(np.float32)
        return self.samples[start:stop] - separation.stored[start:stop].astype(np.float32).sum(axis=-1)

    def levels(self, window_s: float = 0.05) -> list[float]:
        """Each stem's level as heard now (dBFS, RMS over the last window_s; −inf when silent).

        Before the stems exist the meters show what plays: the mix, in every strip."""
        stop = self.mixer.position
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
        if self.mixer.ended:
            self.seek_to(0.0)
            self.playing = True
        else:
            self.playing = not self.playing
        self._publish()

    def seek_by(self, seconds: float) -> None:
        self.seek_to(self.position_s + seconds)

    def seek_to(self, seconds: float) -> None:
        sample = int(min(max(seconds, 0.0), self.duration_s) * SIGNAL.sample_rate)
        sample = min(sample, len(self.samples))
        self.mixer.seek_to = sample
        self.mixer.position = sample  # the screen shows it at once; the callback confirms
        self.session.seek(sample)

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
        self._publish()
        self._start(self.active)
        return True

    def toggle_loop(self) -> str:
        """First press marks A, the second B (the loop plays), the third clears it."""
        position = self.mixer.position
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
    def export_stems(self) -> tuple[np.ndarray, np.ndarray]:
        """The remix (n_samples, 2) and stems (n_samples, 2, n_stems) as they play now (the
        active model, the current gains); TuiplayerError while the song is not all separated."""
        separation = self.separation()
        if separation is None or not separation.complete:
            state = self.models[self.active]
            share = f"{100 * state.done // max(state.total, 1)} %" if state.total else "not started"
            raise TuiplayerError(f"{state.card.name} has not separated the whole song yet ({share})")
        stems = complete_stems(self.samples, separation.stored)
        remix = np.einsum("nck,k->nc", stems, np.asarray(self.effective_gains(), dtype=np.float32))
        return remix.astype(np.float32), stems

    # ---- internals --------------------------------------------------------------------------
    def _key(self, index: int) -> str:
        """The session's name for model `index` (A and B may be the same model)."""
        return f"{'AB'[index]}:{self.models[index].card.name}"

    def _publish(self) -> None:
        self.mixer.snapshot = MixSnapshot(gains=self.effective_gains(), model=self.active,
                                          playing=self.playing, loop=self.loop)

    def _event(self, event: SessionEvent) -> None:
        """A session event (on a worker thread): update the model's state, then pass it on."""
        index = next((i for i in range(len(self.models)) if self._key(i) == event.model), None)
        if index is not None:
            state = self.models[index]
            if isinstance(event, ModelReady):
                state.status = "separating"
            elif isinstance(event, BlocksDone):
                state.status, state.done, state.total = "separating", event.done, event.total
            elif isinstance(event, Finished | FromCache):
                state.status = "done"
                separation = self.session.separations.get(event.model)
                if separation is not None:
                    state.done = state.total = len(separation.grid)
            elif isinstance(event, Failed):
                state.status = "failed"
            if isinstance(event, Finished | FromCache | Failed):
                for other in range(len(self.models)):  # the partner's turn
                    self._start(other)
        if self._on_event is not None:
            self._on_event(event)


def format_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
