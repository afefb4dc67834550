"""The separation in a process of its own (DESIGN.md §1, §4).

On 2 cores one Python process cannot both draw the screen and load and run a model: the
screen's thread held the GIL while the model loaded in pure Python, and the first stems came
5x later than the engine alone managed (measured, issue 12). So the player forks a child at
launch, before the screen starts, that imports the inference runtime, loads the models and
runs the `Engine`:

- the song (n_samples, 2) float32 is the child's copy-on-write view of the parent's array;
- each model's stems go into its `StemBuffers` in shared memory (tuiplayer.stems), which the
  sound process mixes and the screen reads;
- the playhead and the active model come from the transport's control array (shared memory,
  playback.process): the child reads them before every step, so seeks and A/B switches need
  no message;
- everything else it has to say — progress, readiness, errors — goes up a pipe as engine
  events, which the screen takes on its timer (`events()`);
- once the song is done, it separates the following song of the session (if any) into the
  stem cache (engine.separate_ahead), so that one opens with its stems.

The child runs below the screen's priority (nice +BACKGROUND_NICE) and ends when the parent
closes its end of the pipe (or dies). If it dies on its own, `events()` says so once: the
player shows a notice and plays the original mix wherever there are no stems.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from tuiplayer.dsp.stft import Stft
from tuiplayer.playback.process import MODEL, POSITION, fork_child, name_process
from tuiplayer.separation.cache import StemCache
from tuiplayer.separation.engine import (
    AheadEvent,
    AheadProgress,
    BlocksDone,
    Engine,
    Event,
    ModelSlot,
    separate_ahead,
)

BACKGROUND_NICE = 5
"""How much lower than the screen and the sound the separation runs (Linux nice): they get
the CPU first when they need it, and all of it goes to separation when they don't."""


SEPARATION_THREADS = 1
"""Threads the separation uses for its STFTs (and asks of the inference runtime): one core of
two, the other left to the screen and the sound (DESIGN.md §4)."""


PLANNER_EFFORT = "FFTW_ESTIMATE"
"""How hard FFTW plans the separation's STFTs: FFTW_MEASURE's plans took 0.4 s each way before
the first block (measured), and save ~1 ms a block."""


@dataclass(frozen=True)
class Stopped:
    """The separation process ended on its own (a crash, or killed); exit code or signal."""

    message: str


def _serve(connection: Connection, parent_end: Connection, audio: np.ndarray, slots: list[ModelSlot],
           control: np.ndarray, cache: StemCache | None, content: str | None, following: Path | None) -> None:
    """The child: separate, sending events; then the following song ahead into the cache; then
    wait to be told to stop."""
    parent_end.close()  # (else the parent's death would never read as EOF here)
    name_process("tuiplayer-sep")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when separation ends
    gc.freeze()  # the parent's objects: never walked here (nor copied by the walk)
    with contextlib.suppress(OSError):
        os.nice(BACKGROUND_NICE)

    def send(event: Event | AheadEvent) -> None:
        connection.send(event)
        finished = not isinstance(event, BlocksDone | AheadProgress) or event.done == event.total
        if finished:  # into the player's log
            print(f"tuiplayer separation: {event} at monotonic {time.monotonic():.3f}", file=sys.stderr, flush=True)

    stft = Stft(threads=SEPARATION_THREADS, planner_effort=PLANNER_EFFORT)
    engine = Engine(audio, slots, send, playhead=lambda: int(control[POSITION]),
                    active=lambda: int(control[MODEL]), cache=cache, content=content, stft=stft)
    try:
        engine.run(stop=connection.poll)  # a message, or the parent's end closed
        if following is not None and cache is not None and not connection.poll():
            separate_ahead(following, slots, cache, send, stop=connection.poll, stft=stft)
        connection.poll(None)  # all done: wait to be told to end
    except (BrokenPipeError, EOFError, OSError):
        pass  # the parent is gone


class SeparationProcess:
    """Separates `audio` with each slot's model in a forked child (see the module docstring).

    control: the transport's shared control array (playhead, active model).
    """

    def __init__(self, audio: np.ndarray, slots: list[ModelSlot], control: np.ndarray,
                 cache: StemCache | None = None, content: str | None = None, following: Path | None = None) -> None:
        """content: the song's content_hash where the caller has it (else the child makes it);
        following: the song to separate ahead into the cache once this one is done."""
        self._process, self._connection = fork_child(_serve, (audio, slots, control, cache, content, following),
                                                    "tuiplayer-separation")
        self._reported = False

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def events(self) -> list[Event | AheadEvent | Stopped]:
        """What the child said since the last call (never blocks); a `Stopped` once, at the end,
        if it died on its own."""
        taken: list[Event | AheadEvent | Stopped] = []
        try:
            while self._connection.poll():
                taken.append(self._connection.recv())
        except (EOFError, OSError):
            pass
        if not self._reported and not self._process.is_alive() and not self._connection.closed:
            self._reported = True
            code = self._process.exitcode
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            taken.append(Stopped(f"the separation process stopped ({how})"))
        return taken

    def close(self) -> None:
        """End the child (it stops between two blocks)."""
        self._reported = True
        with contextlib.suppress(OSError, ValueError):
            self._connection.send("stop")
        self._process.join(2.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(1.0)
        self._connection.close()
