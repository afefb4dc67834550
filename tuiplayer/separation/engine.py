"""Separating one song with one or two models, one block at a time (DESIGN.md §4).

`Engine` is what the separation process runs (separation.process) and what `bench` and the
tests drive directly. Each `step()` does one piece of work — open a model (its stems from the
cache, or the model loaded), or separate one block — chosen afresh from where the playhead is
*now* and which model is active *now*: a seek or an A/B switch is served by the very next
step, and a step is one block's model call (0.03-0.15 s on this machine's CPU runtime), so
no call needs to be cut short or overtaken.

Which model works next: the first entry of LEAD_GOALS whose model has less than that many
seconds of stems ready past the playhead. The active model's stems reach 10 s ahead first,
then its partner's (so that an A/B switch plays stems at once), then both a minute ahead,
then the rest of the song, active model first. A block is the one the playhead needs, else the
next one ahead, else (once everything ahead is done) the nearest one behind — for a model
that keeps ahead of the playhead. A model slower than the song plays (a big model on a busy
machine) would finish each such block after it was heard, so it makes blocks far enough
ahead to be done before the playhead gets there, in stretches (`_stretch_block`): it gets
ahead as far as it can. How long a block takes is measured per model (`ModelSlot.block_s`),
how fast the playhead moves between steps (`Engine.playhead_rate`: 0 while paused, about the
tempo while playing).

Everything the engine has to say is an event through `on_event`: progress, readiness,
errors. A failure ends that model's separation only; the other goes on, and the player plays
the original mix wherever there are no stems.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tuiplayer.config import SIGNAL
from tuiplayer.dsp.stft import Stft
from tuiplayer.errors import TuiplayerError
from tuiplayer.separation.cache import StemCache, content_hash
from tuiplayer.separation.separator import Predict, Separator, SongSeparation
from tuiplayer.stems import StemBuffers


@dataclass(frozen=True)
class ModelReady:
    """The model loaded, in load_s seconds."""

    model: str
    load_s: float


@dataclass(frozen=True)
class BlocksDone:
    """Blocks were added. done/total: blocks so far; seconds: the call's duration (STFT, model,
    inverse STFT); speed: seconds of song this model separates per second (from its blocks
    after its first; None until then) — below the playback tempo it cannot keep ahead."""

    model: str
    blocks: tuple[int, ...]
    done: int
    total: int
    seconds: float
    speed: float | None = None


@dataclass(frozen=True)
class Finished:
    """Every block of the song is separated."""

    model: str


@dataclass(frozen=True)
class FromCache:
    """The model's stems came from the cache: the whole song is separated already."""

    model: str


@dataclass(frozen=True)
class Failed:
    """Separation stopped on an error; message is one line for the user."""

    model: str
    message: str


@dataclass(frozen=True)
class Notice:
    """Something the user should know that stops nothing (e.g. the cache is not writable)."""

    model: str
    message: str


Event = ModelReady | BlocksDone | Finished | FromCache | Failed | Notice


LEAD_GOALS: tuple[tuple[int, float], ...] = ((0, 10.0), (1, 10.0), (0, 60.0), (1, 60.0), (0, math.inf),
                                             (1, math.inf))
"""(rank, seconds): rank 0 is the active model, 1 its A/B partner; the first pair whose model
has fewer seconds of stems ready past the playhead gets the next step (see the module doc);
inf: any block left, behind the playhead included."""

RATE_WINDOW_S = 0.5
"""The playhead's speed is measured over at least this much time between steps."""
RECENT_BLOCKS = 8
"""A model's speed is measured over its latest blocks (the machine's load changes)."""
STRETCH_BLOCKS = 3
"""A model slower than the playhead starts each stretch of stems this many blocks' making time
ahead of it (longer stretches, fewer seams heard between the stems and the original mix)."""
MAX_RATE = 4.0
"""A playhead moving faster than this (song seconds per second), or backwards, jumped (a seek,
a loop): the last measured rate stands."""


@dataclass
class ModelSlot:
    """One model the engine separates with. name: carried in its events; sha256: the cache's key
    for its stems; load: makes its Predict (called by the engine, in its process); buffers: where
    its stems go (shared memory in the player)."""

    name: str
    sha256: str
    load: Callable[[], Predict]
    buffers: StemBuffers
    state: str = "waiting"  # waiting, separating, done, failed
    separator: Separator | None = field(default=None, repr=False)
    song: SongSeparation | None = field(default=None, repr=False)
    timed: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_BLOCKS), repr=False)
    """Seconds the latest blocks took, from the second on (the first includes the runtime's
    warm-up)."""
    blocks_made: int = 0

    @property
    def block_s(self) -> float:
        """How long one block takes this model now (mean of the latest; 0 until measured)."""
        return sum(self.timed) / len(self.timed) if self.timed else 0.0

    def speed(self) -> float | None:
        """Seconds of song separated per second of work (None until measured)."""
        if not self.timed or self.song is None:
            return None
        grid = self.song.grid
        return grid.step * SIGNAL.hop_length / SIGNAL.sample_rate / max(self.block_s, 1e-9)


class Engine:
    """Separates `audio` (n_samples, 2) float32 with each slot's model.

    playhead: where playback is now (samples); active: the index of the slot playing now.
    """

    def __init__(
        self,
        audio: np.ndarray,
        slots: list[ModelSlot],
        on_event: Callable[[Event], None],
        *,
        playhead: Callable[[], int] = lambda: 0,
        active: Callable[[], int] = lambda: 0,
        cache: StemCache | None = None,
        stft: Stft | None = None,
        content: str | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.audio = np.ascontiguousarray(audio, dtype=np.float32)
        self.slots = slots
        self._on_event = on_event
        self._playhead = playhead
        self._active = active
        self._cache = cache
        # the song's cache key (content_hash), given where the caller has it already
        self._content = content if content is not None else content_hash(self.audio) if cache is not None else ""
        self._stft = stft or Stft()
        self._clock = clock  # seconds: how long blocks take, how fast the playhead moves
        self._rate = 1.0
        self._rate_mark: tuple[float, int] | None = None  # (time, playhead) the rate is measured from

    def run(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Step until every model is done or failed, or stop() says so (asked between steps)."""
        while not stop() and self.step():
            pass

    def step(self) -> bool:
        """Do the next piece of work; False when there is none left."""
        choice = self._next()
        if choice is None:
            return False
        slot, block = choice
        if slot.state == "waiting":
            self._open(slot)
        else:
            self._separate(slot, block)
        return True

    def lead_s(self, slot: ModelSlot) -> float:
        """Seconds of `slot`'s stems ready from the playhead on (inf: to the song's end)."""
        playhead = min(max(int(self._playhead()), 0), len(self.audio))
        until = slot.buffers.ready_until(playhead)
        return math.inf if until >= len(self.audio) else (until - playhead) / SIGNAL.sample_rate

    def playhead_rate(self) -> float:
        """How fast the playhead moves, in song seconds per second (1 until measured; 0 while
        paused); measured over RATE_WINDOW_S or more, a jump keeps the last rate."""
        now, playhead = self._clock(), int(self._playhead())
        if self._rate_mark is None:
            self._rate_mark = (now, playhead)
            return self._rate
        then, before = self._rate_mark
        if now - then >= RATE_WINDOW_S:
            rate = (playhead - before) / SIGNAL.sample_rate / (now - then)
            if 0 <= rate <= MAX_RATE:
                self._rate = rate
            self._rate_mark = (now, playhead)
        return self._rate

    def _next(self) -> tuple[ModelSlot, int] | None:
        """The slot to work on and (when it is open) the block to separate."""
        active = min(max(int(self._active()), 0), len(self.slots) - 1)
        ranked = [self.slots[active], *(s for i, s in enumerate(self.slots) if i != active)]
        for rank, goal_s in LEAD_GOALS:
            if rank >= len(ranked) or ranked[rank].state in ("done", "failed"):
                continue
            slot = ranked[rank]
            if slot.state == "waiting":
                return slot, -1
            wanted = not slot.song.complete if goal_s == math.inf else self.lead_s(slot) < goal_s  # type: ignore[union-attr]
            if wanted:
                return slot, self._next_block(slot)
        return None

    def _next_block(self, slot: ModelSlot) -> int:
        """The block to make next for `slot` (see the module doc)."""
        song = slot.song
        assert song is not None
        playhead = min(max(int(self._playhead()), 0), len(self.audio) - 1)
        rate, speed = self.playhead_rate(), slot.speed()
        if speed is not None and speed < rate:
            ahead = self._stretch_block(song, playhead, slot.block_s * rate * SIGNAL.sample_rate)
            if ahead is not None:
                return ahead
        needed = [i for i in song.blocks_needed(playhead) if not song.done[i]]
        if needed:
            return needed[0]
        first = song.block_at_sample(playhead)
        ahead = np.flatnonzero(~song.done[first:])
        if len(ahead):
            return first + int(ahead[0])
        return int(np.flatnonzero(~song.done[:first])[-1])

    @staticmethod
    def _stretch_block(song: SongSeparation, playhead: int, moves: float) -> int | None:
        """For a model slower than the playhead, which moves `moves` samples while a block is
        made: the block that lengthens a stretch of stems ahead and is made before the playhead
        gets there, else the first block of a new stretch STRETCH_BLOCKS blocks' time ahead
        (None: nothing is far enough ahead)."""
        starts = np.asarray(song.grid.starts) * SIGNAL.hop_length
        todo = ~song.done
        follows = np.concatenate([[False], song.done[:-1]])  # the block before it is made
        lengthens = np.flatnonzero(todo & follows & (starts >= playhead + moves))
        if len(lengthens):
            return int(lengthens[0])
        fresh = np.flatnonzero(todo & (starts >= playhead + STRETCH_BLOCKS * moves))
        return int(fresh[0]) if len(fresh) else None

    def _open(self, slot: ModelSlot) -> None:
        """The slot's stems from the cache, or its model loaded (state separating or failed)."""
        slot.song = SongSeparation(self.audio, self._stft, 4, buffers=slot.buffers)
        cached = self._cache.load(self.audio, self._content, slot.sha256) if self._cache is not None else None
        if cached is not None:
            slot.song.fill(cached)
            slot.state = "done"
            self._on_event(FromCache(slot.name))
            return
        started = self._clock()
        try:
            predict = slot.load()
        except TuiplayerError as error:
            self._fail(slot, str(error))
            return
        except Exception as error:  # reported, never a traceback
            self._fail(slot, f"cannot load the model ({type(error).__name__}: {error})")
            return
        slot.separator = Separator(predict, stft=self._stft)
        slot.state = "separating"
        self._on_event(ModelReady(slot.name, self._clock() - started))

    def _separate(self, slot: ModelSlot, block: int) -> None:
        song, separator = slot.song, slot.separator
        assert song is not None and separator is not None
        started = self._clock()
        try:
            separator.run_blocks(song, [block])
        except TuiplayerError as error:
            self._fail(slot, str(error))
            return
        except Exception as error:
            self._fail(slot, f"separation failed ({type(error).__name__}: {error})")
            return
        seconds = self._clock() - started
        slot.blocks_made += 1
        if slot.blocks_made > 1:
            slot.timed.append(seconds)
        self._on_event(BlocksDone(slot.name, (block,), int(song.done.sum()), len(song.grid), seconds,
                                  slot.speed()))
        if song.complete:
            slot.state = "done"
            if self._cache is not None:
                problem = self._cache.store(song.stored, self._content, slot.sha256)
                if problem:
                    self._on_event(Notice(slot.name, problem))
            self._on_event(Finished(slot.name))

    def _fail(self, slot: ModelSlot, message: str) -> None:
        slot.state = "failed"
        self._on_event(Failed(slot.name, message))
