"""Separation: the engine's order of work, readiness, seeks, A/B, errors as events, the cache,
and the separation process around it."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import numpy as np
import pytest
from test_separator import spectral_predict

from tuiplayer.config import SIGNAL
from tuiplayer.dsp.stft import Stft
from tuiplayer.errors import ModelError
from tuiplayer.playback.control import MODEL, POSITION, SONG, new_control
from tuiplayer.separation.cache import StemCache
from tuiplayer.separation.engine import (
    BlocksDone,
    Engine,
    Failed,
    Finished,
    FromCache,
    ModelReady,
    ModelSlot,
    Notice,
)
from tuiplayer.separation.process import BACKGROUND_NICE, Model, SeparationProcess, Stopped
from tuiplayer.separation.separator import Separator, SongSeparation
from tuiplayer.stems import SharedSong, StemBuffers

STFT = Stft(planner_effort="FFTW_ESTIMATE")
SR = SIGNAL.sample_rate


def noise(seconds: float) -> np.ndarray:
    return np.random.default_rng(0).uniform(-0.5, 0.5, (int(seconds * SR), 2)).astype(np.float32)


def slot(name: str, audio: np.ndarray, load=lambda: spectral_predict, sha: str | None = None) -> ModelSlot:
    return ModelSlot(name, sha or name * 64, load, StemBuffers.zeros(len(audio)))


def test_stems_become_ready_where_their_blocks_are_done() -> None:
    separation = SongSeparation(noise(20.0), STFT, 4)
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


def test_the_engine_separates_everything_playhead_first_and_reports() -> None:
    audio = noise(30.0)
    events: list = []
    a = slot("a", audio)
    playhead = [12 * SR]
    engine = Engine(audio, [a], events.append, playhead=lambda: playhead[0], stft=STFT)
    engine.run()
    assert isinstance(events[0], ModelReady) and isinstance(events[-1], Finished)
    blocks = [e.blocks[0] for e in events if isinstance(e, BlocksDone)]
    song = a.song
    assert song is not None
    # the playhead's block first, then ahead in order, then behind it backwards
    here = song.blocks_needed(playhead[0])[0]
    assert blocks[0] == here and blocks == sorted(blocks[: len(blocks) - here]) + list(range(here - 1, -1, -1))
    assert events[-2].done == events[-2].total == len(song.grid)
    np.testing.assert_allclose(song.stems.sum(axis=-1), audio, atol=1e-4)
    assert a.buffers.complete and not engine.step()


def test_a_seek_is_served_by_the_next_step() -> None:
    audio = noise(60.0)
    events: list = []
    a = slot("a", audio)
    playhead = [0]
    engine = Engine(audio, [a], events.append, playhead=lambda: playhead[0], stft=STFT)
    engine.step()  # load
    engine.step()  # the block at the start
    target = 45 * SR
    playhead[0] = target
    assert not a.buffers.ready(target, target + 1024)
    steps = 0
    while not a.buffers.ready(target, target + 1024):
        engine.step()
        steps += 1
    assert steps == len(a.song.blocks_needed(target))  # type: ignore[union-attr]


def heard_separated(block_s: float, seconds: float = 90.0) -> tuple[float, list[BlocksDone]]:
    """A model taking `block_s` (simulated) seconds a block while the song plays from 0 at its
    own tempo: the share of the song heard with stems, and the engine's BlocksDone events."""
    audio = noise(seconds)
    events: list = []
    now = [0.0]

    def slow_predict(magnitude: np.ndarray) -> np.ndarray:
        now[0] += block_s
        return spectral_predict(magnitude)

    a = slot("a", audio, load=lambda: slow_predict)
    engine = Engine(audio, [a], events.append, playhead=lambda: int(now[0] * SR), stft=STFT, clock=lambda: now[0])
    heard = 0
    while now[0] < seconds:
        # during a step the playhead moves on; stems are there for it where they were before the step
        start = int(now[0] * SR)
        ready = [a.buffers.ready(t, t + SR // 10) for t in range(start, len(audio), SR // 10)]
        if not engine.step():
            now[0] += 1.0
        stop = min(int(now[0] * SR), len(audio))
        heard += sum(ready[: (stop - start) // (SR // 10)]) * (SR // 10)
    return heard / len(audio), [e for e in events if isinstance(e, BlocksDone)]


def test_a_model_slower_than_the_song_gets_ahead_in_stretches_and_says_how_fast_it_is() -> None:
    """A model that cannot keep ahead (6 s a block, about 0.6x real time) separates blocks
    that will be done before the playhead reaches them, so a good part of the song is heard
    with stems; chasing the playhead would finish every block after it was heard (the
    engine's order before it measured speeds: 0 % heard here)."""
    share, blocks = heard_separated(6.0, seconds=120.0)
    step_s = SongSeparation(noise(1.0), STFT, 4).grid.step * SIGNAL.hop_length / SR
    assert blocks[0].speed is None  # the first block includes the runtime's warm-up
    assert blocks[-1].speed == pytest.approx(step_s / 6.0)
    assert share > 0.35
    fast_share, fast = heard_separated(0.1)
    assert fast[-1].speed == pytest.approx(step_s / 0.1) and fast_share > 0.95


def test_the_partner_gets_stems_near_the_playhead_soon_and_a_switch_goes_first() -> None:
    """A/B: the active model first reaches 10 s ahead of the playhead, then the partner does
    (so switching plays stems at once); switching makes the new active model go first."""
    audio = noise(120.0)
    events: list = []
    a, b = slot("a", audio), slot("b", audio)
    active = [0]
    engine = Engine(audio, [a, b], events.append, active=lambda: active[0], stft=STFT)
    while not isinstance(events[-1] if events else None, ModelReady) or events[-1].model != "b":
        engine.step()
    assert engine.lead_s(a) >= 10.0 and engine.lead_s(b) == 0
    while engine.lead_s(b) < 10.0:
        engine.step()
    assert engine.lead_s(a) < 20.0  # the partner came before the active model's further blocks
    assert b.buffers.ready(0, 10 * SR)
    active[0] = 1  # the user switched: B is active now, and works until it is a minute ahead
    before = len(events)
    for _ in range(5):
        engine.step()
    assert {e.model for e in events[before:]} == {"b"}


@pytest.mark.parametrize("where", ["load", "inference"])
def test_errors_become_events_and_the_other_model_goes_on(where: str) -> None:
    def broken_load():
        raise ModelError("models/x/model.keras: cannot load the model (truncated)")

    def broken_predict(x: np.ndarray) -> np.ndarray:
        raise RuntimeError("out of memory")

    audio = noise(10.0)
    events: list = []
    bad = slot("x", audio, broken_load if where == "load" else (lambda: broken_predict))
    good = slot("y", audio)
    Engine(audio, [bad, good], events.append, stft=STFT).run()
    failure = next(e for e in events if isinstance(e, Failed))
    assert failure.model == "x" and bad.state == "failed"
    assert ("cannot load" if where == "load" else "separation failed (RuntimeError: out of memory)") in failure.message
    assert isinstance(events[-1], Finished) and events[-1].model == "y" and good.buffers.complete


def test_two_models_separate_the_same_song_and_the_cache_serves_it_again(tmp_path) -> None:
    def other_predict(x: np.ndarray) -> np.ndarray:
        return spectral_predict(x)[..., ::-1]  # another "model": the bands reversed

    audio = noise(15.0)
    store = StemCache(tmp_path)
    a, b = slot("a", audio), slot("b", audio, lambda: other_predict)
    Engine(audio, [a, b], [].append, cache=store, stft=STFT).run()
    assert a.buffers.complete and b.buffers.complete
    # A/B: the same samples of the song, different stems; both sum to the song
    assert not np.allclose(a.buffers.stored, b.buffers.stored)
    assert len(store.entries()) == 2

    events: list = []
    again = slot("a", audio, lambda: pytest.fail("the cache should serve this"), sha="a" * 64)
    Engine(audio, [again], events.append, cache=store, stft=STFT).run()
    assert events == [FromCache("a")]
    np.testing.assert_array_equal(again.buffers.stored, a.buffers.stored)
    assert again.buffers.complete


def test_an_unwritable_cache_is_a_notice_and_the_stems_still_play(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    audio = noise(8.0)
    events: list = []
    a = slot("a", audio)
    Engine(audio, [a], events.append, cache=StemCache(blocker), stft=STFT).run()
    assert any(isinstance(e, Notice) and "stems not cached" in e.message for e in events)
    assert isinstance(events[-1], Finished) and a.buffers.ready(0, 1000)


def _events_until(process: SeparationProcess, done, timeout: float = 60.0) -> list:
    seen: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen += process.events()
        if done(seen):
            return seen
        time.sleep(0.02)
    raise AssertionError(f"not seen in {timeout} s: {seen}")


def _unwrapped(seen: list) -> list:
    """The events of (song, event) pairs, without their songs (Stopped stays as it is)."""
    return [item[1] if isinstance(item, tuple) else item for item in seen]


def test_the_separation_process_fills_shared_stems_from_the_playhead_and_the_active_model() -> None:
    """The child reads the song playing, its playhead and the active model from the control
    array, writes the stems into shared memory handed to it while it runs, sends its events
    up the pipe, and runs below our priority."""
    audio = noise(40.0)
    control = new_control()
    control[SONG], control[POSITION], control[MODEL] = 0, 30 * SR, 1
    calls = multiprocessing.get_context("fork").Value("i", 0)

    def load():
        with calls.get_lock():
            calls.value += 1
        return lambda x: (spectral_predict(x), time.sleep(0.01))[0]

    process = SeparationProcess([Model("a", "a" * 64, load), Model("b", "b" * 64, load)], control)
    song = SharedSong.create(0, audio, 2)  # made after the fork: handed over by its pipe
    try:
        process.add(song, "content")
        seen = _events_until(process, lambda s: sum(isinstance(e, Finished) for e in _unwrapped(s)) == 2)
        assert {number for number, _ in seen} == {0}
        first = next(e for e in _unwrapped(seen) if isinstance(e, BlocksDone))
        assert first.model == "b"  # the active one
        assert song.stems[1].ready(30 * SR, 31 * SR) and song.stems[0].complete
        vocals = song.stems[1].stored[..., 0].astype(np.float32)  # written by the child, seen here
        assert np.abs(vocals).mean() > 0.1 * np.abs(audio).mean()
        nice = os.getpriority(os.PRIO_PROCESS, process.pid)  # type: ignore[arg-type]
        assert nice == min(os.getpriority(os.PRIO_PROCESS, 0) + BACKGROUND_NICE, 19)

        following = SharedSong.create(1, audio[::-1].copy(), 2)  # the next song: the same models, not loaded again
        process.add(following, "other content")
        seen = _events_until(process, lambda s: sum(isinstance(e, Finished) for e in _unwrapped(s)) == 2)
        assert {number for number, _ in seen} == {1} and following.stems[0].complete
        assert calls.value == 2  # once per model for the session
    finally:
        process.close()
    assert process.events() == []  # an ordinary end is no news


def test_the_playing_song_is_separated_first_and_a_song_let_go_of_stops() -> None:
    audio = noise(30.0)
    control = new_control()
    control[SONG] = 1  # the second song plays; the first was only added

    def load():
        return lambda x: (spectral_predict(x), time.sleep(0.05))[0]

    process = SeparationProcess([Model("a", "a" * 64, load)], control)
    songs = [SharedSong.create(n, audio, 1) for n in (0, 1)]
    try:
        process.add(songs[0], "first")
        process.add(songs[1], "second")
        seen = _events_until(process, lambda s: any(isinstance(e, Finished) for e in _unwrapped(s)))
        blocks = [number for number, event in seen if isinstance(event, BlocksDone)]
        assert blocks[-1] == 1 and blocks.count(0) <= 1  # (the first may have begun before the second came)
        assert [number for number, event in seen if isinstance(event, Finished)] == [1]
        process.forget(0)
        time.sleep(0.5)
        later = [number for number, event in process.events() if isinstance(event, BlocksDone)]
        assert later.count(0) <= 1  # (one block may have been under way)
        assert not songs[0].stems[0].complete
    finally:
        process.close()


def test_a_separation_process_that_dies_says_so_once() -> None:
    audio = noise(60.0)

    def load():
        return lambda x: (spectral_predict(x), time.sleep(0.2))[0]

    process = SeparationProcess([Model("a", "a" * 64, load)], new_control())
    process.add(SharedSong.create(0, audio, 1), "content")
    try:
        _events_until(process, lambda s: any(isinstance(e, BlocksDone) for e in _unwrapped(s)))
        os.kill(process.pid, signal.SIGKILL)  # type: ignore[arg-type]
        seen = _events_until(process, lambda s: any(isinstance(e, Stopped) for e in s), timeout=10)
        assert [e for e in seen if isinstance(e, Stopped)] == [Stopped("the separation process stopped (signal 9)")]
        assert process.events() == []
    finally:
        process.close()


def test_a_song_separated_ahead_goes_into_the_cache(tmp_path) -> None:
    """Opened again later, a song separated while another played has its stems in the cache,
    the same as separating it would give."""
    from tuiplayer.separation.cache import content_hash

    samples = noise(12.0)
    cache = StemCache(tmp_path / "cache")
    control = new_control()
    control[SONG] = 5  # (another song plays)
    process = SeparationProcess([Model("a", "a" * 64, lambda: spectral_predict)], control, cache)
    try:
        process.add(SharedSong.create(0, samples, 1), content_hash(samples))
        _events_until(process, lambda s: any(isinstance(e, Finished) for e in _unwrapped(s)))
    finally:
        process.close()
    expected = Separator(spectral_predict, stft=STFT).separate(samples)
    stored = cache.load(samples, content_hash(samples), "a" * 64)
    assert stored is not None
    np.testing.assert_allclose(stored.astype(np.float32), expected[..., :3], atol=2e-3)
