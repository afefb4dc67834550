"""What the spectrogram preview shows: the power of short slices of audio, one per column."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache

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


@lru_cache(maxsize=16)
def band_edges(n_bands: int, n_freqs: int = SIGNAL.n_freqs) -> np.ndarray:
    """Bin edges (n_bands + 1,) of log-spaced bands from 40 Hz to 16 kHz, at least one bin each."""
    hz = np.geomspace(40.0, 16000.0, n_bands + 1)
    edges = np.round(hz / (SIGNAL.sample_rate / SIGNAL.n_fft)).astype(int)
    for i in range(1, len(edges)):
        edges[i] = max(edges[i], edges[i - 1] + 1)
    return np.minimum(edges, n_freqs)


def spectrogram_image(spec_power: np.ndarray, n_bands: int) -> np.ndarray:
    """STFT power (frames, n_freqs) → (frames, n_bands) levels 0..1 (−80 … 0 dB, log bands)."""
    edges = band_edges(n_bands, spec_power.shape[1])
    sums = np.add.reduceat(spec_power, edges[:-1], axis=1)[:, :n_bands]
    means = sums / np.maximum(np.diff(edges), 1)[None, :]
    db = 10 * np.log10(means + 1e-12) - 20 * np.log10(SIGNAL.n_fft / 4)  # full scale sine ≈ 0 dB
    return np.clip((db + 80.0) / 80.0, 0.0, 1.0)


class SpectrumColumns:
    """Spectrogram columns of the audio the screen shows, computed in a thread of their own so
    the screen's thread only draws them (DESIGN.md §4). Column k is centred on sample k·hop.

    The screen asks for `image(key, audio, first, count, n_bands)` on its timer; columns not
    computed yet come back as silence (0) and are computed next, with AHEAD_SCREENS of the
    view's width ahead of it, so a scrolling view finds its columns ready. Columns belong to
    one source (`key`: the mix, or a stem of a model) and one band count; asking for another
    starts afresh.
    """

    AHEAD_SCREENS = 1.0

    def __init__(self, hop: int) -> None:
        self.hop = hop
        self._key: tuple[object, int] | None = None
        self._columns: dict[int, np.ndarray] = {}
        self._wanted: tuple[tuple[object, int], Callable[[int, int], tuple[np.ndarray, int]], int, int] | None = None
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def image(self, key: object, audio: Callable[[int, int], tuple[np.ndarray, int] | None], first: int,
              count: int, n_bands: int) -> np.ndarray:
        """Columns first … first+count-1 as (count, n_bands) levels 0..1 (0 where not computed yet).

        audio(start, stop) gives (samples (n, 2), the sample number of samples[0]) covering at
        least samples [start, stop) of the song (outside the song is silence), or None when it
        has nothing there; it is called on the worker thread."""
        if self._key != (key, n_bands):
            self._key, self._columns = (key, n_bands), {}
        columns = self._columns
        blank = np.zeros(n_bands, dtype=np.float32)
        image = np.stack([columns.get(k, blank) for k in range(first, first + count)])
        self._wanted = ((key, n_bands), audio, first, count)
        if any(k not in columns for k in range(first, first + count + int(self.AHEAD_SCREENS * count))):
            self._start()
            self._wake.set()
        return image

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="spectrum", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while self._wake.wait():
            self._wake.clear()
            wanted = self._wanted
            if wanted is not None:
                self._compute(*wanted)

    def _compute(self, key: tuple[object, int], audio: Callable[[int, int], tuple[np.ndarray, int] | None],
                 first: int, count: int) -> None:
        last = first + count + int(self.AHEAD_SCREENS * count)
        for start, stop in ((first, first + count), (first + count, last)):  # what shows now, then ahead
            columns = self._columns
            missing = [k for k in range(start, stop) if k not in columns]
            if not missing:
                continue
            lo, hi = missing[0], missing[-1]
            half = SIGNAL.n_fft // 2
            piece = audio(lo * self.hop - half, hi * self.hop + half)
            if piece is None:  # (e.g. a stem not separated that far yet)
                return
            samples, offset = piece
            levels = spectrogram_image(column_power(samples, lo * self.hop - offset, hi - lo + 1, self.hop), key[1])
            if self._key != key:  # the view changed meanwhile: these belong to no one
                return
            fresh = {k: v for k, v in columns.items() if first - count <= k < last + count}  # forget what scrolled
            fresh.update(zip(range(lo, hi + 1), levels, strict=True))
            self._columns = fresh
