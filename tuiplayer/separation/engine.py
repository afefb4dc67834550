"""Background separation: one worker thread per loaded model (DESIGN.md §4).

A `SeparationWorker` owns its model: it loads it in its own thread (TensorFlow is imported
there, so the UI is up before TensorFlow is), then separates the song's blocks in the
scheduler's order until all are done or it is stopped. `seek` re-prioritises at once: when
a model call is under way, the block the new playhead needs goes to an urgent lane (a second
thread) whose model call runs next, between two stages of the call under way (`ModelGate`;
runtime.Runner runs a model in stages), and has the CPU to itself until its stems are in.
Everything it has to say goes out as an event through `on_event` — progress, readiness,
errors — and an error ends the worker cleanly (the player keeps playing the original mix);
it never dies with a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from tuiplayer.config import SIGNAL
from tuiplayer.errors import TuiplayerError
from tuiplayer.memory import freeze_long_lived
from tuiplayer.separation.scheduler import BlockScheduler
from tuiplayer.separation.separator import Predict, Separator, SongSeparation


@dataclass(frozen=True)
class ModelReady:
    """The model loaded (load_s seconds after the worker started)."""

    model: str
    load_s: float


@dataclass(frozen=True)
class BlocksDone:
    """Blocks were added. done/total: blocks so far; seconds: the call's own duration (STFT,
    model, inverse STFT), not the time it waited for the other lane's."""

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


FIRST_CALL_LEAD_S = 1.5
"""How far playback gets during a model's first call, which runs eagerly (the hybrid, two
blocks: 1.1-1.2 s, and their STFTs)."""


BACKGROUND_NICE = 5
"""How much lower the separation's threads run than the screen's (Linux nice): the screen and
the sound process get the CPU first when they need it, and all of it goes to separation when
they don't."""


def _lower_priority() -> None:
    """This thread, and the threads it starts (TensorFlow's pools are made on their first use,
    here), run BACKGROUND_NICE below the rest of the process (on Linux, nice is per thread)."""
    with contextlib.suppress(OSError, AttributeError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE)


class ModelGate:
    """One model stage at a time, and none of the main lane's while an urgent block is under way.

    TensorFlow gives every call in the process the same executor threads: two calls at once
    take as long as one after the other (runtime.PLAYER_THREADS). So what a seek's block can
    win is its place in the queue: its model call goes next, between two stages of the call
    under way (runtime.Runner runs a model in stages), and then has the CPU to itself.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._busy = False
        self._urgent = 0  # urgent blocks under way

    @contextlib.contextmanager
    def urgent(self) -> Iterator[None]:
        """An urgent block, from its STFT to its stems: the main lane starts no stage meanwhile."""
        with self._changed:
            self._urgent += 1
        try:
            yield
        finally:
            with self._changed:
                self._urgent -= 1
                self._changed.notify_all()

    @contextlib.contextmanager
    def stage(self, urgent: bool) -> Iterator[None]:
        """One stage of a model call: after the stage under way, and after urgent blocks unless urgent."""
        with self._changed:
            self._changed.wait_for(lambda: not self._busy and (urgent or not self._urgent))
            self._busy = True
        try:
            yield
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()


class SeparationWorker(threading.Thread):
    """Separates `song` with the model `load()` returns, playhead first.

    name: the model's name (carried in every event). load: makes the model's Predict (runs in
    this thread). on_event: called from this thread; the UI forwards it with post_message.
    playhead: where playback is now (samples), when something is playing the song.
    """

    def __init__(
        self,
        name: str,
        load: Callable[[], Predict],
        song: SongSeparation,
        on_event: Callable[[Event], None],
        batch_size: int = 8,
        playhead: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(name=f"separate-{name}", daemon=True)
        self.model = name
        self.song = song
        self._playhead = playhead
        self._load = load
        self._on_event = on_event
        self._scheduler = BlockScheduler(len(song.grid), batch_size)
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._separator: Separator | None = None
        self._busy: set[int] = set()  # blocks in a model call now (either lane)
        self._urgent: threading.Thread | None = None
        self._gate = ModelGate()
        self._lane = threading.local()  # waited_s: the time this lane's call spent waiting at the gate

    def seek(self, sample: int) -> None:
        """The playhead moved to `sample`: serve its block next (at once, in the urgent lane,
        when a model call is under way)."""
        needed = self.song.blocks_needed(sample)
        with self._lock:
            self._scheduler.move_to(self.song.block_at_sample(sample), needed)
            blocks = [i for i in needed if not self.song.done[i] and i not in self._busy]
            if not blocks or not self._busy or self._separator is None or self._cancel.is_set():
                return  # nothing to do, or the next call serves it anyway
            if self._urgent is not None and self._urgent.is_alive():
                return
            blocks = blocks[:1]  # a second one (a cross-fade) is the main lane's next call
            self._busy.update(blocks)
            self._urgent = threading.Thread(target=self._separate_urgent, args=(blocks,), daemon=True,
                                            name=f"separate-{self.model}-urgent")
            self._urgent.start()

    def _catch_up(self, sample: int) -> None:
        """Playback went on while the model loaded (seconds): the first call takes the two
        blocks whose stems cover where playback will be when it ends, from at most an overlap
        (1.1 s) after that place to at least a step (3.3 s) after it. The second call traces
        the graph (the hybrid: 2.2-2.8 s), so one block's share (2.2 s) would run out before
        its neighbour is done."""
        frame = (sample + int(FIRST_CALL_LEAD_S * SIGNAL.sample_rate)) // self.song.stft.config.hop_length
        grid = self.song.grid
        first = min(frame // grid.step, len(grid) - 1)
        with self._lock:
            self._scheduler.move_to(first, tuple(range(first, min(first + 2, len(grid)))))

    def stop(self) -> None:
        """Cancel: the worker ends after the model call in progress."""
        self._cancel.set()

    @property
    def stopped(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:
        started = time.perf_counter()
        _lower_priority()
        try:
            predict = self._load()
        except TuiplayerError as error:
            self._on_event(Failed(self.model, str(error)))
            return
        except Exception as error:  # a worker reports, it never dies with a traceback
            self._on_event(Failed(self.model, f"cannot load the model ({type(error).__name__}: {error})"))
            return
        freeze_long_lived()  # TensorFlow and the model live as long as the process
        self._on_event(ModelReady(self.model, time.perf_counter() - started))
        if self._playhead is not None:
            self._catch_up(self._playhead())
        with self._lock:
            self._separator = Separator(self._gated(predict), stft=self.song.stft)
        while not self._cancel.is_set():
            with self._lock:
                taken = self.song.done.copy()
                taken[list(self._busy)] = True
                batch = self._scheduler.next_batch(taken)
                self._busy.update(batch)
                urgent = self._urgent
            if not batch:
                if urgent is not None and urgent.is_alive():
                    urgent.join()  # its blocks are the last ones
                    continue
                if self.song.complete:
                    self._on_event(Finished(self.model))
                return
            if not self._separate(batch):
                return

    def _gated(self, predict: Predict) -> Predict:
        """predict through the gate: stage by stage where it has stages (runtime.Runner), else whole."""

        in_stages = getattr(predict, "call_in_stages", None)

        def gated(magnitudes: np.ndarray) -> np.ndarray:
            step = functools.partial(self._waiting, threading.current_thread() is self._urgent)
            if in_stages is not None:
                return in_stages(magnitudes, step)
            with step():
                return predict(magnitudes)

        return gated

    @contextlib.contextmanager
    def _waiting(self, urgent: bool) -> Iterator[None]:
        """A stage through the gate; the time it waited to start counts in this lane's waited_s."""
        asked = time.perf_counter()
        with self._gate.stage(urgent):
            self._lane.waited_s += time.perf_counter() - asked
            yield

    def _separate_urgent(self, blocks: list[int]) -> None:
        with self._gate.urgent():
            self._separate(blocks)

    def _separate(self, blocks: list[int]) -> bool:
        """One model call on `blocks` (claimed in _busy); False (and a Failed event) on an error."""
        call_start = time.perf_counter()
        self._lane.waited_s = 0.0
        try:
            self._separator.run_blocks(self.song, blocks)  # type: ignore[union-attr]
        except Exception as error:
            self._cancel.set()
            self._on_event(Failed(self.model, f"separation failed ({type(error).__name__}: {error})"))
            return False
        finally:
            with self._lock:
                self._busy.difference_update(blocks)
        self._on_event(BlocksDone(self.model, tuple(blocks), int(self.song.done.sum()), len(self.song.grid),
                                  time.perf_counter() - call_start - self._lane.waited_s))
        return True
