"""Stem masks: normalise, extend to the full band, apply to the mixture, invert.

The model predicts masks for bins 0 … n_bins-1 only (to ~11 kHz). The bins above still need a
mask so that the four stems together give back the whole song: each stem's mask there is its
mean mask over the top `EXTENSION_SOURCE_BINS` modelled bins in the same frame and channel.
Because every modelled bin's masks sum to 1 over the stems, so does that mean — the unity
remix (DESIGN.md §3) holds in all n_freqs bins.

Shapes: masks are (n_frames, bins, channels, n_stems) float32 with stems last, in STEMS order;
spectrograms are (n_frames, n_freqs, channels) complex64; audio (n_samples, channels) float32.
"""

from __future__ import annotations

import numpy as np

from tuiplayer.config import SIGNAL
from tuiplayer.dsp.stft import Stft
from tuiplayer.errors import ModelError

EXTENSION_SOURCE_BINS = 128
"""Modelled bins (the highest ones, ~9.6–11 kHz) whose mean mask extends above n_bins."""

EPSILON = 1e-8
"""Below this total, a bin's masks are split evenly between the stems."""


def _non_negative(masks: np.ndarray) -> np.ndarray:
    """masks as float32; ModelError if any is NaN or infinite (a model with broken weights,
    e.g. trained into NaN), ValueError if any is negative."""
    masks = np.asarray(masks, dtype=np.float32)
    if masks.size and not np.isfinite(masks).all():
        raise ModelError("the model gives masks that are not numbers (NaN or infinite): its weights are broken")
    if masks.size and float(masks.min()) < 0.0:
        raise ValueError("masks must be non-negative")
    return masks


def normalise(masks: np.ndarray) -> np.ndarray:
    """Make non-negative masks sum to 1 over the stem (last) axis: m_j / Σ_k m_k.

    masks: (…, n_stems), non-negative. Bins where all stems are (near) zero get 1/n_stems
    each, so the stems still add up to the mixture there.
    """
    masks = _non_negative(masks)
    total = masks.sum(axis=-1, keepdims=True)
    even = np.float32(1.0 / masks.shape[-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > EPSILON, masks / total, even).astype(np.float32, copy=False)


def extend(masks: np.ndarray, n_freqs: int = SIGNAL.n_freqs) -> np.ndarray:
    """Extend masks of the modelled bins to all n_freqs bins.

    masks: (n_frames, n_bins, channels, n_stems), summing to 1 over stems →
    (n_frames, n_freqs, channels, n_stems), still summing to 1 over stems in every bin.
    """
    n_frames, n_bins, channels, n_stems = masks.shape
    if n_bins > n_freqs:
        raise ValueError(f"cannot extend {n_bins} bins to fewer ({n_freqs})")
    source = masks[:, max(0, n_bins - EXTENSION_SOURCE_BINS) :]
    # the mean over those bins, renormalised against rounding: (n_frames, 1, channels, n_stems)
    high = normalise(source.mean(axis=1, keepdims=True))
    full = np.empty((n_frames, n_freqs, channels, n_stems), dtype=np.float32)
    full[:, :n_bins] = masks
    full[:, n_bins:] = high
    return full


def apply(spec: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Masked mixture spectrograms, one per stem (the mixture's phase is kept).

    spec: (n_frames, n_freqs, channels) complex64; masks: (n_frames, n_freqs, channels, n_stems)
    → (n_frames, n_freqs, channels, n_stems) complex64.
    """
    return spec[..., None] * masks


def weighted_stem_spectrograms(spec: np.ndarray, masks: np.ndarray, weights: np.ndarray, n_kept: int) -> np.ndarray:
    """What `apply(spec, extend(normalise(masks)) · weights)[..., :n_kept]` gives, in fewer
    passes over memory and without the full-band masks (the separation's hot path).

    spec: (n_frames, n_freqs, channels) complex64; masks: (n_frames, n_bins, channels,
    n_stems), non-negative; weights: (n_frames,) per-frame factors (a block's cross-fade)
    → (n_frames, n_freqs, channels, n_kept) complex64.
    """
    n_frames, n_bins, channels, n_stems = masks.shape
    n_freqs = spec.shape[1]
    masks = _non_negative(masks)
    per_frame = np.asarray(weights, dtype=np.float32)[:, None, None, None]
    total = masks.sum(axis=-1, keepdims=True)  # (n_frames, n_bins, channels, 1)
    silent = total <= EPSILON
    # the kept stems' share, weighted per frame: (n_frames, n_bins, channels, n_kept)
    kept = masks[..., :n_kept] * (per_frame / np.where(silent, np.float32(1), total))
    if silent.any():  # an even split, as normalise makes
        np.copyto(kept, per_frame / n_stems, where=np.broadcast_to(silent, kept.shape))
    out = np.empty((n_frames, n_freqs, channels, n_kept), dtype=np.complex64)
    np.multiply(spec[:, :n_bins, :, None], kept, out=out[:, :n_bins])
    if n_freqs > n_bins:
        # above the modelled bins: the mean share over the top ones (see extend)
        high = kept[:, max(0, n_bins - EXTENSION_SOURCE_BINS) :].mean(axis=1, keepdims=True)
        np.multiply(spec[:, n_bins:, :, None], high, out=out[:, n_bins:])
    return out


def stems_from_masks(stft: Stft, spec: np.ndarray, masks: np.ndarray, n_samples: int) -> np.ndarray:
    """The stems' audio from the mixture STFT and the model's masks.

    spec: (n_frames, n_freqs, channels) complex64, the mixture's STFT;
    masks: (n_frames, n_bins, channels, n_stems), any non-negative values (normalised here);
    → stems (n_samples, channels, n_stems) float32 whose sum over stems is the mixture.
    """
    n_stems = masks.shape[-1]
    stem_specs = weighted_stem_spectrograms(spec, masks, np.ones(len(spec), dtype=np.float32), n_stems)
    stems = np.empty((n_samples, spec.shape[2], n_stems), dtype=np.float32)
    for j in range(n_stems):
        # one stem at a time: (n_frames, n_freqs, channels) complex64
        stems[..., j] = stft.inverse(np.ascontiguousarray(stem_specs[..., j]), n_samples)
    return stems


def oracle_masks(stem_magnitudes: np.ndarray) -> np.ndarray:
    """The ideal ratio mask |S_j| / Σ_k |S_k| from the true stems (DESIGN.md §7).

    stem_magnitudes: (n_frames, bins, channels, n_stems) → masks of the same shape.
    """
    return normalise(stem_magnitudes)

