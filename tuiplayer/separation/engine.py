"""Background separation: one worker thread per loaded model (DESIGN.md §4).

A `SeparationWorker` owns its model: it loads it in its own thread (TensorFlow is imported
there, so the UI is up before TensorFlow is), then separates the song's blocks in the
scheduler's order until all are done or it is stopped. `seek` re-prioritises between two
model calls. Everything it has to say goes out as an event through `on_event` — progress,
readiness, errors — and an error ends the worker cleanly (the player keeps playing the
original mix); it never dies with a traceback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tuiplayer.errors import TuiplayerError
from tuiplayer.separation.scheduler import BlockScheduler
from tuiplayer.separation.separator import Predict, Separator, SongSeparation


@dataclass(frozen=True)
class ModelReady:
    """The model loaded (load_s seconds after the worker started)."""

    model: str
    load_s: float


@dataclass(frozen=True)
class BlocksDone:
    """Blocks were added. done/total: blocks so far; seconds: the model call's duration."""

    model: str
    blocks: tuple[int, ...]
    done: int
    total: int
    seconds: float


@dataclass(frozen=True)
class Finished:
    """Every block of the song is separated."""

    model: str


@dataclass(frozen=True)
class Failed:
    """Separation stopped on an error; message is one line for the user."""

    model: str
    message: str


Event = ModelReady | BlocksDone | Finished | Failed


class SeparationWorker(threading.Thread):
    """Separates `song` with the model `load()` returns, playhead first.

    name: the model's name (carried in every event). load: makes the model's Predict (runs in
    this thread). on_event: called from this thread; the UI forwards it with post_message.
    """

    def __init__(
        self,
        name: str,
        load: Callable[[], Predict],
        song: SongSeparation,
        on_event: Callable[[Event], None],
        batch_size: int = 8,
    ) -> None:
        super().__init__(name=f"separate-{name}", daemon=True)
        self.model = name
        self.song = song
        self._load = load
        self._on_event = on_event
        self._scheduler = BlockScheduler(len(song.grid), batch_size)
        self._lock = threading.Lock()
        self._cancel = threading.Event()

    def seek(self, sample: int) -> None:
        """The playhead moved to `sample`: serve its block next."""
        with self._lock:
            self._scheduler.move_to(self.song.block_at_sample(sample), self.song.blocks_needed(sample))

    def stop(self) -> None:
        """Cancel: the worker ends after the model call in progress."""
        self._cancel.set()

    @property
    def stopped(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:
        started = time.perf_counter()
        try:
            predict = self._load()
        except TuiplayerError as error:
            self._on_event(Failed(self.model, str(error)))
            return
        except Exception as error:  # a worker reports, it never dies with a traceback
            self._on_event(Failed(self.model, f"cannot load the model ({type(error).__name__}: {error})"))
            return
        self._on_event(ModelReady(self.model, time.perf_counter() - started))
        separator = Separator(predict, stft=self.song.stft)
        total = len(self.song.grid)
        while not self._cancel.is_set():
            with self._lock:
                batch = self._scheduler.next_batch(self.song.done)
            if not batch:
                self._on_event(Finished(self.model))
                return
            call_start = time.perf_counter()
            try:
                separator.run_blocks(self.song, batch)
            except Exception as error:
                self._on_event(Failed(self.model, f"separation failed ({type(error).__name__}: {error})"))
                return
            self._on_event(BlocksDone(self.model, tuple(batch), int(self.song.done.sum()), total,
                                      time.perf_counter() - call_start))
