"""The separation in a process of its own (DESIGN.md §1, §4).

On 2 cores one Python process cannot both draw the screen and load and run a model: the
screen's thread held the GIL while the model loaded in pure Python, and the first stems came
5x later than the engine alone managed (measured, issue 12). So the player forks a child at
launch, before the screen starts and before any song is decoded, that imports the inference
runtime, loads the models (once for the session) and runs one `Engine` per song it is given:

- each song comes as a `tuiplayer.stems.SharedSong` down the child's pipe (`add`): its audio,
  and each model's `StemBuffers` in shared memory, which the sound process mixes and the
  screen reads; `forget` ends its separation and lets go of it;
- the song playing, its playhead and the active model come from the transport's control array
  (shared memory, playback.process): the child reads them before every step, so seeks and A/B
  switches need no message. The playing song's engine works first; when it has nothing left,
  the others (the next song, separated ahead so that it starts with its stems);
- everything else it has to say — progress, readiness, errors — goes up the pipe as engine
  events tagged with their song, which the screen takes on its timer (`events()`).

The child runs below the screen's priority (nice +BACKGROUND_NICE) and ends when the parent
closes its end of the pipe (or dies). If it dies on its own, `events()` says so once: the
player shows a notice and plays the original mix wherever there are no stems.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection

import numpy as np

from tuiplayer.dsp.stft import Stft
from tuiplayer.playback.control import MODEL, POSITION, SONG
from tuiplayer.playback.process import Child, name_process
from tuiplayer.separation.cache import StemCache
from tuiplayer.separation.engine import BlocksDone, Engine, Event, ModelSlot
from tuiplayer.separation.separator import Predict
from tuiplayer.stems import SharedSong, receive_song

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


@dataclass(frozen=True)
class Model:
    """A model the session separates with: key (its name in events, e.g. "A:unet"), sha256 (the
    cache's key for its stems), load (makes its Predict, in the child; called once a session)."""

    key: str
    sha256: str
    load: Callable[[], Predict]


def _serve(connection: Connection, parent_end: Connection, models: list[Model], control: np.ndarray,
           cache: StemCache | None) -> None:
    """The child: separate the songs it is given, the playing one first; wait when all are done."""
    parent_end.close()  # (else the parent's death would never read as EOF here)
    name_process("tuiplayer-sep")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when separation ends
    gc.freeze()  # the parent's objects: never walked here (nor copied by the walk)
    with contextlib.suppress(OSError):
        os.nice(BACKGROUND_NICE)
    stft = Stft(threads=SEPARATION_THREADS, planner_effort=PLANNER_EFFORT)
    loaded: dict[str, Predict] = {}  # sha256 → the model, loaded once for every song

    def load(model: Model) -> Predict:
        if model.sha256 not in loaded:
            loaded[model.sha256] = model.load()
        return loaded[model.sha256]

    engines: dict[int, Engine] = {}
    try:
        while True:
            while connection.poll():  # a message, or the parent's end closed (EOFError)
                message, song = receive_song(connection)
                kind, number = message[0], int(message[1]) if len(message) > 1 else -1
                if kind == "stop":
                    return
                if kind == "add" and song is not None:
                    engines[number] = _engine(song, message[2], models, load, control, cache, stft,
                                              _sender(connection, number))
                elif kind == "forget":
                    engines.pop(number, None)
            playing = int(control[SONG])
            order = sorted(engines, key=lambda n: n != playing)  # the playing song first
            if not any(engines[number].step() for number in order):
                connection.poll(None)  # all done: wait for a message
    except (BrokenPipeError, EOFError, OSError):
        pass  # the parent is gone


def _sender(connection: Connection, song: int) -> Callable[[Event], None]:
    def send(event: Event) -> None:
        connection.send((song, event))
        finished = not isinstance(event, BlocksDone) or event.done == event.total
        if finished:  # into the player's log
            print(f"tuiplayer separation: song {song}: {event} at monotonic {time.monotonic():.3f}",
                  file=sys.stderr, flush=True)

    return send


def _engine(song: SharedSong, content: str, models: list[Model], load: Callable[[Model], Predict],
            control: np.ndarray, cache: StemCache | None, stft: Stft, send: Callable[[Event], None]) -> Engine:
    """An engine for one song: its playhead and active model are the control array's while it
    plays, else its start and its first model."""
    number = song.song
    slots = [ModelSlot(model.key, model.sha256, functools.partial(load, model), buffers)
             for model, buffers in zip(models, song.stems, strict=True)]
    return Engine(song.audio, slots, send, cache=cache, content=content, stft=stft,
                  playhead=lambda: int(control[POSITION]) if control[SONG] == number else 0,
                  active=lambda: int(control[MODEL]) if control[SONG] == number else 0)


class SeparationProcess(Child):
    """Separates the session's songs with each of `models` in a forked child (see the module
    docstring). control: the transport's shared control array (song, playhead, active model).
    Fork it before songs are decoded: the child would hold on to what the parent holds then."""

    def __init__(self, models: list[Model], control: np.ndarray, cache: StemCache | None = None) -> None:
        super().__init__(_serve, (models, control, cache), "tuiplayer-separation")
        self._reported = False

    def add(self, song: SharedSong, content: str) -> None:
        """Separate `song` (content: its content_hash, the cache's key) with every model."""
        self.send(("add", song.song, content), song)

    def forget(self, song: int) -> None:
        """Stop separating song number `song` and let go of it."""
        self.send(("forget", song))

    def events(self) -> list[tuple[int, Event] | Stopped]:
        """What the child said since the last call, (song, event) each (never blocks); a
        `Stopped` once, at the end, if it died on its own."""
        taken: list[tuple[int, Event] | Stopped] = []
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
        super().close()
