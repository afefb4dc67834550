"""Separation: the engine's order of work, readiness, seeks, A/B, errors as events, the cache,
and the separation process around it."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from test_separator import spectral_predict

from tuiplayer.config import SIGNAL
from tuiplayer.dsp.stft import Stft
from tuiplayer.errors import ModelError
from tuiplayer.playback.process import MODEL, POSITION, new_control
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
from tuiplayer.separation.process import BACKGROUND_NICE, SeparationProcess, Stopped
from tuiplayer.separation.separator import Separator, SongSeparation
from tuiplayer.stems import StemBuffers

STFT = Stft(planner_effort="FFTW_ESTIMATE")
SR = SIGNAL.sample_rate


def noise(seconds: float) -> np.ndarray:
    return np.random.default_rng(0).uniform(-0.5, 0.5, (int(seconds * SR), 2)).astype(np.float32)


def slot(name: str, audio: np.ndarray, load=lambda: spectral_predict, sha: str | None = None,
         shared: bool = False) -> ModelSlot:
    return ModelSlot(name, sha or name * 64, load, StemBuffers.zeros(len(audio), shared=shared))


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


def test_the_separation_process_fills_shared_stems_from_the_playhead_and_the_active_model() -> None:
    """The child reads the playhead and the active model from the control array, writes the
    stems into shared memory, sends its events up the pipe, and runs below our priority."""
    audio = noise(40.0)
    control = new_control()
    control[POSITION], control[MODEL] = 30 * SR, 1

    def load():
        return lambda x: (spectral_predict(x), time.sleep(0.01))[0]

    slots = [slot("a", audio, load, shared=True), slot("b", audio, load, shared=True)]
    process = SeparationProcess(audio, slots, control)
    try:
        seen = _events_until(process, lambda s: sum(isinstance(e, Finished) for e in s) == 2)
        first = next(e for e in seen if isinstance(e, BlocksDone))
        assert first.model == "b"  # the active one
        assert slots[1].buffers.ready(30 * SR, 31 * SR) and slots[0].buffers.complete
        vocals = slots[1].buffers.stored[..., 0].astype(np.float32)  # written by the child, seen here
        assert np.abs(vocals).mean() > 0.1 * np.abs(audio).mean()
        nice = os.getpriority(os.PRIO_PROCESS, process.pid)  # type: ignore[arg-type]
        assert nice == min(os.getpriority(os.PRIO_PROCESS, 0) + BACKGROUND_NICE, 19)
    finally:
        process.close()
    assert process.events() == []  # an ordinary end is no news


def test_a_separation_process_that_dies_says_so_once() -> None:
    audio = noise(60.0)

    def load():
        return lambda x: (spectral_predict(x), time.sleep(0.2))[0]

    process = SeparationProcess(audio, [slot("a", audio, load, shared=True)], new_control())
    try:
        _events_until(process, lambda s: any(isinstance(e, BlocksDone) for e in s))
        os.kill(process.pid, signal.SIGKILL)  # type: ignore[arg-type]
        seen = _events_until(process, lambda s: any(isinstance(e, Stopped) for e in s), timeout=10)
        assert [e for e in seen if isinstance(e, Stopped)] == [Stopped("the separation process stopped (signal 9)")]
        assert process.events() == []
    finally:
        process.close()


def test_once_a_song_is_done_the_following_one_is_separated_ahead_into_the_cache(tmp_path) -> None:
    """The separation process goes on to the session's next song (a file) with the same models;
    opened then, that song's stems come from the cache, the same as separating it would give."""
    import soundfile

    from tuiplayer.audio.io import load
    from tuiplayer.separation.cache import content_hash
    from tuiplayer.separation.engine import AheadProgress, AheadReady

    audio, following = noise(8.0), tmp_path / "next.wav"
    soundfile.write(following, noise(40.0)[::-1] * 0.5, SR, subtype="FLOAT")
    cache = StemCache(tmp_path / "cache")
    slots = [slot("a", audio, shared=True), slot("b", audio, shared=True)]
    process = SeparationProcess(audio, slots, new_control(), cache, following=following)
    try:
        seen = _events_until(process, lambda s: any(isinstance(e, AheadReady) for e in s), timeout=60)
    finally:
        process.close()
    assert [e.path for e in seen if isinstance(e, AheadReady)] == [str(following)]
    finished = max(i for i, e in enumerate(seen) if isinstance(e, Finished))
    first_ahead = min(i for i, e in enumerate(seen) if isinstance(e, AheadProgress))
    assert finished < first_ahead  # the song playing first, all of it
    progress = [e for e in seen if isinstance(e, AheadProgress)]
    assert progress[-1].done <= progress[-1].total and progress[0].done < progress[-1].done
    samples = load(following).samples
    expected = Separator(spectral_predict, stft=STFT).separate(samples)
    for name in ("a", "b"):
        stored = cache.load(samples, content_hash(samples), name * 64)
        assert stored is not None
        np.testing.assert_allclose(stored.astype(np.float32), expected[..., :3], atol=2e-3)


def test_a_following_song_that_cannot_be_read_is_only_a_note(tmp_path) -> None:
    from tuiplayer.separation.engine import AheadFailed

    audio, following = noise(5.0), tmp_path / "broken.flac"
    following.write_text("not audio")
    process = SeparationProcess(audio, [slot("a", audio, shared=True)], new_control(),
                                StemCache(tmp_path / "cache"), following=following)
    try:
        seen = _events_until(process, lambda s: any(isinstance(e, AheadFailed) for e in s), timeout=30)
    finally:
        process.close()
    failed = [e for e in seen if isinstance(e, AheadFailed)]
    assert len(failed) == 1 and "broken.flac" in failed[0].message and any(isinstance(e, Finished) for e in seen)
