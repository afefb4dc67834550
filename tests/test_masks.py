"""Masks: normalisation, full-band extension, and the unity remix (stems sum to the input)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuiplayer.config import SIGNAL
from tuiplayer.dsp import masks
from tuiplayer.dsp.stft import Stft, n_frames_for


@pytest.fixture(scope="module")
def stft() -> Stft:
    return Stft(planner_effort="FFTW_ESTIMATE")


def error_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    return float(10 * np.log10((np.sum((estimate - reference) ** 2) + 1e-30) / np.sum(reference**2)))


def test_normalise_sums_to_one_and_splits_silence_evenly() -> None:
    raw = np.array([[1.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    out = masks.normalise(raw)
    np.testing.assert_allclose(out[0], [0.25, 0.25, 0.5, 0.0])
    np.testing.assert_allclose(out[1], [0.25] * 4)
    with pytest.raises(ValueError, match="non-negative"):
        masks.normalise(-raw)


def test_extension_covers_all_bins_and_keeps_the_sum() -> None:
    rng = np.random.default_rng(0)
    low = masks.normalise(rng.uniform(0, 1, (10, SIGNAL.n_bins, 2, 4)))
    full = masks.extend(low)
    assert full.shape == (10, SIGNAL.n_freqs, 2, 4)
    np.testing.assert_array_equal(full[:, : SIGNAL.n_bins], low)
    np.testing.assert_allclose(full.sum(axis=-1), 1.0, atol=1e-6)
    # above the model band each stem keeps its share of the top modelled bins
    top = low[:, -masks.EXTENSION_SOURCE_BINS :].mean(axis=1)
    np.testing.assert_allclose(full[:, -1], top, atol=1e-6)


@settings(max_examples=20, deadline=None)
@given(
    n_samples=st.integers(1, 60_000),
    seed=st.integers(0, 2**32 - 1),
    sparsity=st.floats(0.0, 0.95),
)
def test_any_normalised_masks_give_stems_that_sum_to_the_input(
    stft: Stft, n_samples: int, seed: int, sparsity: float
) -> None:
    rng = np.random.default_rng(seed)
    audio = rng.uniform(-1, 1, (n_samples, 2)).astype(np.float32)
    spec = stft.forward(audio)
    raw = rng.uniform(0, 1, (n_frames_for(n_samples), SIGNAL.n_bins, 2, 4)).astype(np.float32)
    raw[rng.uniform(size=raw.shape) < sparsity] = 0.0  # many zero masks, some all-zero bins
    stems = masks.stems_from_masks(stft, spec, raw, n_samples)
    assert stems.shape == (n_samples, 2, 4)
    assert error_db(stems.sum(axis=-1), audio) < -60


def test_a_full_mask_gives_the_whole_song_full_band(stft: Stft) -> None:
    """One stem with mask 1 everywhere is the input itself, including the band above 11 kHz."""
    rng = np.random.default_rng(5)
    audio = rng.standard_normal((44_100, 2)).astype(np.float32)  # white: energy up to 22 kHz
    spec = stft.forward(audio)
    raw = np.zeros((len(spec), SIGNAL.n_bins, 2, 4), dtype=np.float32)
    raw[..., 1] = 1.0
    stems = masks.stems_from_masks(stft, spec, raw, len(audio))
    assert error_db(stems[..., 1], audio) < -60
    assert np.max(np.abs(stems[..., [0, 2, 3]])) < 1e-6


def test_oracle_masks_are_ratio_masks() -> None:
    mags = np.random.default_rng(6).uniform(0, 1, (4, 8, 2, 4)).astype(np.float32)
    oracle = masks.oracle_masks(mags)
    np.testing.assert_allclose(oracle, mags / mags.sum(axis=-1, keepdims=True), rtol=1e-6)


def test_weighted_stem_spectrograms_are_the_masked_extended_weighted_stems() -> None:
    rng = np.random.default_rng(3)
    spec = (rng.normal(size=(20, 2049, 2)) + 1j * rng.normal(size=(20, 2049, 2))).astype(np.complex64)
    model_masks = rng.uniform(0, 1, (20, 1024, 2, 4)).astype(np.float32)
    model_masks[3, 10:20] = 0.0  # silent bins: an even split
    weights = rng.uniform(0, 1, 20).astype(np.float32)
    full = masks.extend(masks.normalise(model_masks)) * weights[:, None, None, None]
    reference = masks.apply(spec, full)[..., :3]
    fast = masks.weighted_stem_spectrograms(spec, model_masks, weights, 3)
    assert fast.shape == (20, 2049, 2, 3) and fast.dtype == np.complex64
    np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="non-negative"):
        masks.weighted_stem_spectrograms(spec, -model_masks, weights, 3)
