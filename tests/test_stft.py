"""STFT/ISTFT on pyFFTW: exact round trip for any length, shapes, buffers, threads."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuiplayer.config import SIGNAL
from tuiplayer.dsp.stft import Stft, magnitude, n_frames_for


@pytest.fixture(scope="module")
def stft() -> Stft:
    return Stft(planner_effort="FFTW_ESTIMATE")


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


@pytest.mark.parametrize("n_samples", [1, 2, 100, 1023, 1024, 1025, 2048, 4095, 4096, 4097, 44100, 300_017])
def test_roundtrip_is_exact_for_any_length(stft: Stft, n_samples: int) -> None:
    audio = np.random.default_rng(n_samples).standard_normal((n_samples, 2)).astype(np.float32)
    spec = stft.forward(audio)
    assert spec.shape == (n_frames_for(n_samples), SIGNAL.n_freqs, 2)
    assert spec.dtype == np.complex64
    restored = stft.inverse(spec, n_samples)
    assert restored.shape == audio.shape and restored.dtype == np.float32
    assert relative_error(restored, audio) < 1e-5


@settings(max_examples=25, deadline=None)
@given(n_samples=st.integers(1, 70_000), channels=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_roundtrip_property(stft: Stft, n_samples: int, channels: int, seed: int) -> None:
    audio = np.random.default_rng(seed).uniform(-1, 1, (n_samples, channels)).astype(np.float32)
    assert relative_error(stft.inverse(stft.forward(audio), n_samples), audio) < 1e-5


def test_matches_a_plain_numpy_stft(stft: Stft) -> None:
    """Frame t is centred on sample t·hop, Hann-windowed: compare with numpy's rfft."""
    audio = np.random.default_rng(1).standard_normal((20_000, 2)).astype(np.float32)
    spec = stft.forward(audio)
    half = SIGNAL.n_fft // 2
    padded = np.pad(audio, ((half, SIGNAL.n_fft), (0, 0)))
    window = np.hanning(SIGNAL.n_fft + 1)[:-1]
    for t in (0, 1, 7, n_frames_for(len(audio)) - 1):
        frame = padded[t * SIGNAL.hop_length : t * SIGNAL.hop_length + SIGNAL.n_fft] * window[:, None]
        expected = np.fft.rfft(frame, axis=0)
        np.testing.assert_allclose(spec[t], expected, atol=2e-3 * np.abs(expected).max())


def test_threads_and_reused_buffers_give_the_same_result() -> None:
    audio = np.random.default_rng(2).standard_normal((200_000, 2)).astype(np.float32)
    one, two = Stft(threads=1, planner_effort="FFTW_ESTIMATE"), Stft(threads=2, planner_effort="FFTW_ESTIMATE")
    spec = one.forward(audio)
    out = two.empty_spectrogram(len(spec), 2)
    assert two.forward(audio, out=out) is out
    np.testing.assert_array_equal(out, spec)
    restored = np.empty_like(audio)
    assert two.inverse(spec, len(audio), out=restored) is restored
    np.testing.assert_allclose(restored, one.inverse(spec, len(audio)), atol=1e-6)


def test_inverse_leaves_its_input_alone(stft: Stft) -> None:
    audio = np.random.default_rng(3).standard_normal((50_000, 2)).astype(np.float32)
    spec = stft.forward(audio)
    before = spec.copy()
    stft.inverse(spec, len(audio))
    np.testing.assert_array_equal(spec, before)


def test_shape_errors_are_clear(stft: Stft) -> None:
    with pytest.raises(ValueError, match="n_samples, channels"):
        stft.forward(np.zeros(100, dtype=np.float32))
    spec = stft.forward(np.zeros((5000, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="do not match"):
        stft.inverse(spec, 9000)


def test_magnitude_is_the_model_band(stft: Stft) -> None:
    audio = np.random.default_rng(4).standard_normal((30_000, 2)).astype(np.float32)
    spec = stft.forward(audio)
    mag = magnitude(spec)
    assert mag.shape == (len(spec), SIGNAL.n_bins, 2) and mag.dtype == np.float32
    np.testing.assert_allclose(mag, np.abs(spec[:, : SIGNAL.n_bins]))


def test_frame_ranges_add_up_to_the_whole_transform(stft: Stft) -> None:
    """Forward a range of frames, invert ranges one by one: the same as whole-song calls."""
    audio = np.random.default_rng(7).standard_normal((150_000, 2)).astype(np.float32)
    whole = stft.forward(audio)
    part = stft.forward(audio, first_frame=40, n_frames=70)
    np.testing.assert_array_equal(part, whole[40:110])
    out = np.zeros_like(audio)
    for first in range(0, len(whole), 53):  # uneven ranges, edges included
        stft.inverse(whole[first : first + 53], len(audio), out, first_frame=first, accumulate=True)
    assert relative_error(out, audio) < 1e-5
    with pytest.raises(ValueError, match="accumulate needs out"):
        stft.inverse(whole[:10], len(audio), accumulate=True)


@pytest.mark.parametrize("n_samples", [32 * 1024, 33 * 1024 + 7, 34 * 1024, 64 * 1024])
def test_two_workers_with_a_last_range_shorter_than_the_overlap(n_samples: int) -> None:
    """Frame ranges split on 32-frame chunks can leave the last worker one to three frames;
    its open hops overlap the previous worker's (a bug hypothesis found)."""
    stft = Stft(threads=2, planner_effort="FFTW_ESTIMATE")
    audio = np.random.default_rng(8).uniform(-1, 1, (n_samples, 1)).astype(np.float32)
    assert relative_error(stft.inverse(stft.forward(audio), n_samples), audio) < 1e-5
