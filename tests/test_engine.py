"""Background separation: scheduling, readiness, seeking, cancellation, errors as events."""

from __future__ import annotations

import contextlib
import queue
import threading

import numpy as np
import pytest
from test_separator import spectral_predict

from tuiplayer.config import SIGNAL
from tuiplayer.dsp.stft import Stft
from tuiplayer.errors import ModelError
from tuiplayer.separation.engine import (
    BACKGROUND_NICE,
    FIRST_CALL_LEAD_S,
    BlocksDone,
    Failed,
    Finished,
    ModelReady,
    SeparationWorker,
)
from tuiplayer.separation.scheduler import BlockScheduler
from tuiplayer.separation.separator import Separator, SongSeparation

STFT = Stft(planner_effort="FFTW_ESTIMATE")


def song(seconds: float = 30.0) -> SongSeparation:
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (int(seconds * SIGNAL.sample_rate), 2)).astype(np.float32)
    return SongSeparation(audio, STFT, 4)


def test_scheduler_serves_the_playhead_then_ahead_then_behind() -> None:
    scheduler = BlockScheduler(6, batch_size=3)
    done = np.zeros(6, dtype=bool)
    scheduler.move_to(3)
    assert scheduler.order() == [3, 4, 5, 2, 1, 0]
    assert scheduler.next_batch(done) == [3]  # the first batch after a seek is one block
    done[3] = True
    assert scheduler.next_batch(done) == [4, 5, 2]
    done[[4, 5, 2]] = True
    scheduler.move_to(0, urgent=(0, 1))  # the playhead in the cross-fade of blocks 0 and 1
    assert scheduler.next_batch(done) == [0, 1]
    done[[0, 1]] = True
    done[1] = True
    assert scheduler.next_batch(done) == []


def test_stems_become_ready_where_their_blocks_are_done() -> None:
    separation = song(20.0)
    separator = Separator(spectral_predict, stft=STFT)
    middle = len(separation.grid) // 2
    separator.run_blocks(separation, [middle])
    first, stop = separation.grid.frames(middle)
    hop = SIGNAL.hop_length
    # the middle of the block is final; its overlap with the next block is not yet
    assert separation.ready((first + 60) * hop, (first + 100) * hop)
    assert not separation.ready((stop - 10) * hop, stop * hop)
    assert not separation.ready(0, 1000)
    separator.run_blocks(separation, list(range(len(separation.grid))))
    assert separation.ready(0, len(separation.audio))


def run_worker(worker: SeparationWorker, events: queue.Queue) -> list:
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive()
    return [events.get_nowait() for _ in range(events.qsize())]


def test_worker_separates_everything_and_reports() -> None:
    events: queue.Queue = queue.Queue()
    separation = song(30.0)
    worker = SeparationWorker("fake", lambda: spectral_predict, separation, events.put)
    seen = run_worker(worker, events)
    assert isinstance(seen[0], ModelReady) and isinstance(seen[-1], Finished)
    progress = [e for e in seen if isinstance(e, BlocksDone)]
    assert progress[0].blocks == (0,) and progress[-1].done == progress[-1].total == len(separation.grid)
    assert separation.ready(0, len(separation.audio))
    np.testing.assert_allclose(separation.stems.sum(axis=-1), separation.audio, atol=1e-4)


def test_a_seek_is_served_by_the_next_model_call() -> None:
    events: queue.Queue = queue.Queue()
    separation = song(60.0)
    release = threading.Event()

    def slow_predict(x: np.ndarray) -> np.ndarray:
        release.wait(5)
        return spectral_predict(x)

    worker = SeparationWorker("fake", lambda: slow_predict, separation, events.put)
    worker.start()
    target = 45 * SIGNAL.sample_rate
    worker.seek(target)  # while the first call waits
    release.set()
    worker.join(timeout=120)
    calls = [e.blocks for e in (events.get_nowait() for _ in range(events.qsize())) if isinstance(e, BlocksDone)]
    wanted = separation.blocks_needed(target)
    assert set(wanted) <= set(calls[0]) or calls[1] == tuple(b for b in wanted if b not in calls[0])


def test_stop_cancels_between_model_calls() -> None:
    events: queue.Queue = queue.Queue()
    separation = song(60.0)
    worker = SeparationWorker("fake", lambda: spectral_predict, separation, events.put, batch_size=1)
    worker.stop()
    seen = run_worker(worker, events)
    assert not any(isinstance(e, BlocksDone | Finished) for e in seen)
    assert not separation.done.any()


@pytest.mark.parametrize("where", ["load", "inference"])
def test_errors_become_events_not_dead_threads(where: str) -> None:
    events: queue.Queue = queue.Queue()

    def broken_load():
        raise ModelError("models/x/model.keras: cannot load the model (truncated)")

    def broken_predict(x: np.ndarray) -> np.ndarray:
        raise RuntimeError("out of memory")

    load = broken_load if where == "load" else (lambda: broken_predict)
    seen = run_worker(SeparationWorker("x", load, song(10.0), events.put), events)
    failure = seen[-1]
    assert isinstance(failure, Failed) and failure.model == "x"
    assert ("cannot load" if where == "load" else "separation failed (RuntimeError: out of memory)") in failure.message


def test_two_models_separate_the_same_song_and_the_cache_serves_it_again(tmp_path) -> None:
    from tuiplayer.separation.cache import StemCache
    from tuiplayer.separation.session import FromCache, SongSession

    def other_predict(x: np.ndarray) -> np.ndarray:
        return spectral_predict(x)[..., ::-1]  # another "model": the bands reversed

    audio = song(15.0).audio
    events: queue.Queue = queue.Queue()
    store = StemCache(tmp_path)
    session = SongSession(audio, events.put, cache=store, stft=STFT)
    session.add_model("a", "aa" * 32, lambda: spectral_predict)
    session.add_model("b", "bb" * 32, lambda: other_predict, playhead=10 * SIGNAL.sample_rate)
    session.wait(timeout=120)
    a, b = session.separations["a"], session.separations["b"]
    assert a.ready(0, len(audio)) and b.ready(0, len(audio))
    # A/B: the same samples of the song, different stems; both sum to the song
    assert a.stems.shape == b.stems.shape and not np.allclose(a.stems, b.stems)
    np.testing.assert_allclose(b.stems.sum(axis=-1), audio, atol=1e-4)
    assert len(store.entries()) == 2

    again: queue.Queue = queue.Queue()
    reopened = SongSession(audio, again.put, cache=store, stft=STFT)
    reopened.add_model("a", "aa" * 32, lambda: pytest.fail("the cache should serve this"))
    assert isinstance(again.get_nowait(), FromCache)
    np.testing.assert_allclose(reopened.separations["a"].stems, a.stems, atol=3e-4)
    assert reopened.separations["a"].ready(0, len(audio))


def test_an_unwritable_cache_is_a_notice_and_the_stems_still_play(tmp_path) -> None:
    from tuiplayer.separation.cache import StemCache
    from tuiplayer.separation.session import Notice, SongSession

    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    events: queue.Queue = queue.Queue()
    session = SongSession(song(8.0).audio, events.put, cache=StemCache(blocker), stft=STFT)
    session.add_model("a", "aa" * 32, lambda: spectral_predict)
    session.wait(timeout=120)
    seen = [events.get_nowait() for _ in range(events.qsize())]
    assert any(isinstance(e, Notice) and "stems not cached" in e.message for e in seen)
    assert isinstance(seen[-1], Finished) and session.separations["a"].ready(0, 1000)


class StagedPredict:
    """A stand-in model in 3 stages (as runtime.Runner runs a real one) that logs (call, stage)
    as it runs them; the first call's first stage waits for `release`."""

    def __init__(self) -> None:
        self.log: list[tuple[int, int]] = []
        self.calls = 0
        self.started, self.release = threading.Event(), threading.Event()
        self._lock = threading.Lock()

    def call_in_stages(self, magnitude: np.ndarray, step) -> np.ndarray:
        with self._lock:
            self.calls += 1
            call = self.calls
        for stage in range(3):
            with step():
                if call == 1 and stage == 0:
                    self.started.set()
                    assert self.release.wait(30)
                self.log.append((call, stage))
        return spectral_predict(magnitude)

    def __call__(self, magnitude: np.ndarray) -> np.ndarray:
        return self.call_in_stages(magnitude, contextlib.nullcontext)


def test_a_seek_goes_between_two_stages_of_the_model_call_under_way() -> None:
    """A seek during a model call: its block's call runs all its stages before the call under
    way goes on, so the new playhead has stems before the old call ends."""
    separation = song(60.0)
    model = StagedPredict()
    events: queue.Queue = queue.Queue()
    worker = SeparationWorker("m", lambda: model, separation, events.put, batch_size=1)
    worker.start()
    assert model.started.wait(30)
    target = len(separation.audio) * 3 // 4
    worker.seek(target)
    for _ in range(300):  # the seek's block is under way (its STFT first)
        if worker._gate._urgent:
            break
        threading.Event().wait(0.01)
    model.release.set()
    worker.join(60)
    assert separation.complete and not worker.is_alive()
    assert model.log[:5] == [(1, 0), (2, 0), (2, 1), (2, 2), (1, 1)]
    seen = [events.get_nowait() for _ in range(events.qsize())]
    done = [event.blocks for event in seen if isinstance(event, BlocksDone)]
    assert done[0] == (separation.block_at_sample(target),) and done[1] == (separation.block_at_sample(0),)
    assert isinstance(seen[-1], Finished) and not any(isinstance(e, Failed) for e in seen)
    np.testing.assert_allclose(separation.stems.sum(axis=-1), separation.audio, atol=2e-3)


def test_the_first_call_covers_where_playback_will_be_once_the_model_has_loaded() -> None:
    """Playback went on 20 s while the model loaded: the first call's two blocks give stems from
    at most 1.2 s after where playback will be when it ends, to at least 3.3 s after it."""
    separation = song(60.0)
    playhead = [0]
    ahead = 20 * SIGNAL.sample_rate + int(FIRST_CALL_LEAD_S * SIGNAL.sample_rate)  # playback then
    covered = []

    def load():  # playback moves on 20 s while the model loads
        playhead[0] = 20 * SIGNAL.sample_rate
        return spectral_predict

    def on_event(event) -> None:
        if isinstance(event, BlocksDone) and not covered:
            covered.append((event.blocks, separation.ready(ahead + int(1.2 * SIGNAL.sample_rate),
                                                           ahead + int(3.3 * SIGNAL.sample_rate))))
        events.put(event)

    events: queue.Queue = queue.Queue()
    worker = SeparationWorker("m", load, separation, on_event, batch_size=1, playhead=lambda: playhead[0])
    worker.seek(0)
    run_worker(worker, events)
    blocks, ready = covered[0]
    assert len(blocks) == 2 and blocks[1] == blocks[0] + 1 and ready
    assert separation.block_at_sample(0) not in blocks


def test_separation_runs_below_the_screen_s_priority() -> None:
    """The worker's thread (and so TensorFlow's pools, made there) yields the CPU to the
    screen's thread: a higher nice value."""
    import os

    seen = []

    def load():
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return spectral_predict

    events: queue.Queue = queue.Queue()
    run_worker(SeparationWorker("m", load, song(5.0), events.put), events)
    ours = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen == [min(ours + BACKGROUND_NICE, 19)]
