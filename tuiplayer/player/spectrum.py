"""What the spectrogram preview shows: the power of short slices of audio, one per column."""

from __future__ import annotations

import numpy as np

from tuiplayer.config import SIGNAL

WINDOW = np.hanning(SIGNAL.n_fft).astype(np.float32)


def column_power(audio: np.ndarray, start: int, n_columns: int, hop: int) -> np.ndarray:
    """Power spectra (n_columns, n_freqs) of the mono mix of audio (n_samples, 2), one Hann
    window of n_fft samples centred on start + i·hop for column i; silence outside the audio."""
    n_fft = SIGNAL.n_fft
    first = start - n_fft // 2
    stop = start + (n_columns - 1) * hop + n_fft // 2
    piece = np.zeros(stop - first, dtype=np.float32)
    lo, hi = max(first, 0), min(stop, len(audio))
    if hi > lo:
        piece[lo - first : hi - first] = audio[lo:hi].mean(axis=1)
    # windows as strided views: (n_columns, n_fft)
    frames = np.lib.stride_tricks.sliding_window_view(piece, n_fft)[::hop][:n_columns]
    spectrum = np.fft.rfft(frames * WINDOW, axis=1)
    return (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
