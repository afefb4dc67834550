"""The live remix in the audio callback: unity, gains with ramps, mix until separated, A/B, loop."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from tuiplayer.playback import mixer as mixer_module
from tuiplayer.playback.mixer import Mixer, MixSnapshot

N = 44100 * 2


class FakeStems:
    """Stems with a readiness switch: stored (n, 2, 3) float16, ready everywhere or nowhere."""

    def __init__(self, stems: np.ndarray, ready: bool = True) -> None:
        self.stored = stems[..., :3].astype(np.float16)
        self.is_ready = ready

    def ready(self, start: int, stop: int) -> bool:
        return self.is_ready


def song(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """audio (N, 2) and its four stems (N, 2, 4): tones of different pitch per stem."""
    t = np.arange(N) / 44100
    stems = np.stack([0.2 * np.sin(2 * np.pi * f * t + seed) for f in (440, 110, 55, 880)], axis=-1)
    stems = np.repeat(stems[:, None, :], 2, axis=1).astype(np.float32)
    return stems.sum(axis=-1).astype(np.float32), stems


def play(mixer: Mixer, frames: int, block: int = 1024) -> np.ndarray:
    out = np.empty((frames, 2), dtype=np.float32)
    for start in range(0, frames, block):
        mixer.fill(out[start : start + block])
    return out


def test_unity_gains_play_the_song_exactly() -> None:
    audio, stems = song()
    mixer = Mixer(audio, [FakeStems(stems)])
    np.testing.assert_allclose(play(mixer, N), audio, atol=1e-6)


def test_a_muted_stem_is_gone_after_one_buffer_and_the_change_is_a_ramp() -> None:
    audio, stems = song()
    mixer = Mixer(audio, [FakeStems(stems)])
    before = play(mixer, 4096)
    mixer.snapshot = MixSnapshot(gains=(0.0, 1.0, 1.0, 1.0))
    ramp = play(mixer, 1024)
    after = play(mixer, 8192)
    start = 4096 + 1024
    expected = audio[start : start + 8192] - stems[start : start + 8192, :, 0]
    assert np.max(np.abs(after - expected)) < 2e-3  # float16 stems
    np.testing.assert_allclose(before, audio[:4096], atol=1e-6)
    # inside the ramp buffer the vocal's share falls linearly from 1 to 0: no step
    share = (audio[4096:5120] - ramp)[:, 0] / np.where(np.abs(stems[4096:5120, 0, 0]) > 0.05,
                                                        stems[4096:5120, 0, 0], np.nan)
    fractions = share[~np.isnan(share)]
    assert fractions[0] < 0.1 and fractions[-1] > 0.9 and np.all(np.diff(fractions) > -0.02)


def test_solo_gain_and_other_stems() -> None:
    audio, stems = song()
    mixer = Mixer(audio, [FakeStems(stems)])
    mixer.snapshot = MixSnapshot(gains=(0.0, 1.0, 0.0, 0.0))
    out = play(mixer, 8192)[1024:]
    assert np.max(np.abs(out - stems[1024:8192, :, 1])) < 2e-3
    mixer.snapshot = MixSnapshot(gains=(0.0, 0.0, 0.0, 2.0))
    out = play(mixer, 8192)[1024:]
    assert np.max(np.abs(out - 2 * stems[8192 + 1024 : 16384, :, 3])) < 5e-3


def test_the_original_mix_plays_until_the_stems_are_ready() -> None:
    audio, stems = song()
    stems_a = FakeStems(stems, ready=False)
    mixer = Mixer(audio, [stems_a])
    mixer.snapshot = MixSnapshot(gains=(0.0, 0.0, 0.0, 0.0))
    np.testing.assert_array_equal(play(mixer, 4096), audio[:4096])
    stems_a.is_ready = True
    play(mixer, 1024)  # the ramp to the muted mix
    assert np.max(np.abs(play(mixer, 4096))) < 1e-3


def test_ab_switch_keeps_the_playhead_and_cross_fades() -> None:
    audio, stems = song()
    other_stems = stems.copy()
    other_stems[..., 0], other_stems[..., 1] = stems[..., 1], stems[..., 0]  # B hears them swapped
    mixer = Mixer(audio, [FakeStems(stems), FakeStems(other_stems)])
    mixer.snapshot = MixSnapshot(gains=(1.0, 0.0, 0.0, 0.0), model=0)
    play(mixer, 8192)
    position = mixer.position
    mixer.snapshot = MixSnapshot(gains=(1.0, 0.0, 0.0, 0.0), model=1)
    fade = play(mixer, 1024)
    assert mixer.position == position + 1024
    after = play(mixer, 4096)
    b = slice(position + 1024, position + 1024 + 4096)
    assert np.max(np.abs(after - other_stems[b, :, 0])) < 2e-3
    # the cross-fade starts at A and ends at B
    assert np.max(np.abs(fade[:8] - stems[position : position + 8, :, 0])) < 0.01
    assert np.max(np.abs(fade[-8:] - other_stems[position + 1016 : position + 1024, :, 0])) < 0.01


def test_loop_wraps_and_the_end_plays_silence() -> None:
    audio, stems = song()
    mixer = Mixer(audio, [FakeStems(stems)])
    mixer.snapshot = MixSnapshot(loop=(1000, 3000))
    mixer.seek_to = 2500
    out = play(mixer, 1024)
    np.testing.assert_allclose(out[:500], audio[2500:3000], atol=1e-6)
    np.testing.assert_allclose(out[500:], audio[1000:1524], atol=1e-6)
    mixer.snapshot = MixSnapshot()
    mixer.seek_to = N - 100
    out = play(mixer, 1024)
    np.testing.assert_allclose(out[:100], audio[-100:], atol=1e-6)
    assert not out[100:].any() and mixer.ended
    mixer.snapshot = MixSnapshot(playing=False)
    assert not play(mixer, 1024).any()


def test_the_callback_allocates_no_buffers() -> None:
    audio, stems = song()
    mixer = Mixer(audio, [FakeStems(stems), FakeStems(stems)])
    out = np.empty((4096, 2), dtype=np.float32)
    mixer.snapshot = MixSnapshot(gains=(0.5, 1.0, 0.0, 1.0))
    mixer.fill(out)
    tracemalloc.start()
    try:
        for model in (1, 0, 1, 0):
            mixer.snapshot = MixSnapshot(gains=(0.5, 1.0, 0.0, 1.0), model=model)
            mixer.fill(out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < out.nbytes // 4  # a 4096-frame buffer is 32 kB: nothing buffer-sized was made


def test_the_callback_keeps_the_gil_from_start_to_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each time the callback lets the GIL go, taking it back can wait for the screen's thread
    (up to the switch interval, or a whole garbage collection), so it must hold it from start to
    end. numpy lets the GIL go inside operations on more than 500 elements: every operation of
    a buffer's remix must stay below that, for a big buffer, gains moving and an A/B fade."""
    largest = [0]

    class RecordingNumpy:
        def __getattr__(self, name: str) -> object:
            attribute = getattr(np, name)
            if not (isinstance(attribute, np.ufunc) or name == "copyto"):
                return attribute

            def call(*args: object, **kwargs: object) -> object:
                sizes = [a.size for a in (*args, *kwargs.values()) if isinstance(a, np.ndarray)]
                largest[0] = max(largest[0], *sizes)
                return attribute(*args, **kwargs)

            return call

    audio, stems = song()
    mixer = Mixer(audio, [FakeStems(stems), FakeStems(stems)])
    out = np.empty((4096, 2), dtype=np.float32)
    monkeypatch.setattr(mixer_module, "np", RecordingNumpy())
    for model in (0, 1, 0):
        mixer.snapshot = MixSnapshot(gains=(0.5, 1.0, 0.0, 1.0 - model), model=model)
        mixer.fill(out)
    assert 0 < largest[0] < 500
