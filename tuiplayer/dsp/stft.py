"""Short-time Fourier transform on FFTW (pyFFTW), and its exact inverse.

Frames are centred: frame t covers samples [t·hop − n_fft/2, t·hop + n_fft/2) of the input,
zero-padded at both ends, so a signal of n samples has n // hop + 1 frames and the inverse
(weighted overlap-add with the same Hann window, normalised by the summed squared window)
gives back exactly the n input samples, whatever n is — shorter than one window included.

FFTW plans are built once per worker thread and reused for every call; frames are transformed
in chunks through fixed aligned buffers, so no plan is made per song.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from tuiplayer.config import SIGNAL, SignalConfig

if TYPE_CHECKING:
    import pyfftw


def _pyfftw() -> Any:
    """pyFFTW, imported on first use: its package imports scipy.fftpack, half a second that
    the player's window should not wait for (the STFT runs on the separation workers)."""
    import pyfftw

    return pyfftw

CHUNK_FRAMES = 32
"""Frames per FFTW call (512 KiB of stereo input: the working set stays in cache)."""


def default_threads() -> int:
    """Worker threads: the machine's cores, at most 4 (more brings nothing at n_fft 4096)."""
    return max(1, min(os.cpu_count() or 1, 4))


def n_frames_for(n_samples: int, hop_length: int = SIGNAL.hop_length) -> int:
    """Number of STFT frames for a signal of n_samples (centred frames)."""
    return n_samples // hop_length + 1


@dataclass
class _Plans:
    """One worker thread's FFTW plans for one (n_fft, channels): transforms along axis 1.

    forward: float32 (CHUNK_FRAMES, n_fft, channels) → complex64 (CHUNK_FRAMES, n_freqs, channels)
    inverse: complex64 (CHUNK_FRAMES, n_freqs, channels) → float32 (CHUNK_FRAMES, n_fft, channels)
    """

    forward: pyfftw.FFTW
    inverse: pyfftw.FFTW
    real: np.ndarray  # the forward input / inverse output buffer
    spec: np.ndarray  # the forward output / inverse input buffer


_PLANNER_LOCK = threading.Lock()  # FFTW's planner is not thread-safe
_local = threading.local()


def thread_plans(n_fft: int, channels: int, effort: str) -> _Plans:
    """The calling thread's plans (built on first use, then reused)."""
    cache: dict[tuple[int, int, str], _Plans] = _local.__dict__.setdefault("plans", {})
    key = (n_fft, channels, effort)
    if key not in cache:
        n_freqs = n_fft // 2 + 1
        pyfftw = _pyfftw()
        real = pyfftw.empty_aligned((CHUNK_FRAMES, n_fft, channels), dtype=np.float32)
        spec = pyfftw.empty_aligned((CHUNK_FRAMES, n_freqs, channels), dtype=np.complex64)
        with _PLANNER_LOCK:
            cache[key] = _Plans(
                forward=pyfftw.FFTW(real, spec, axes=(1,), direction="FFTW_FORWARD",
                                    flags=(effort,), threads=1),
                inverse=pyfftw.FFTW(spec, real, axes=(1,), direction="FFTW_BACKWARD",
                                    flags=(effort,), threads=1),  # preserves its input
                real=real,
                spec=spec,
            )
    return cache[key]


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool(threads: int) -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < threads:
            _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tuiplayer-fft")
        return _POOL


def _forget_threads() -> None:
    """In a forked child (the player's separation process): the parent's pool threads and any
    lock they held do not exist here; start afresh."""
    global _POOL, _POOL_LOCK, _PLANNER_LOCK
    _POOL, _POOL_LOCK, _PLANNER_LOCK = None, threading.Lock(), threading.Lock()


os.register_at_fork(after_in_child=_forget_threads)


def split_frames(n_frames: int, parts: int) -> list[tuple[int, int]]:
    """Frame ranges [start, stop) for workers, on CHUNK_FRAMES boundaries."""
    chunks = -(-n_frames // CHUNK_FRAMES)
    parts = max(1, min(parts, chunks))
    bounds = [round(i * chunks / parts) * CHUNK_FRAMES for i in range(parts + 1)]
    bounds[-1] = n_frames
    return [(a, min(b, n_frames)) for a, b in pairwise(bounds) if a < n_frames]


def _fftw_ready(spec: np.ndarray) -> bool:
    """Whether FFTW can use whole chunks of this spectrogram in place (aligned, C-contiguous)."""
    pyfftw = _pyfftw()
    return (
        spec.dtype == np.complex64
        and spec.flags.c_contiguous
        and pyfftw.is_byte_aligned(spec, pyfftw.simd_alignment)
    )


class Stft:
    """STFT / inverse STFT with a periodic Hann window, on FFTW.

    Shapes: audio is (n_samples, channels) float32; a spectrogram is
    (n_frames, n_freqs, channels) complex64 with n_frames = n_samples // hop + 1.
    Frame ranges are transformed in parallel by `threads` workers, each with its own plans;
    numpy and FFTW release the GIL, so the workers really run at once. Thread-safe.
    """

    def __init__(
        self,
        config: SignalConfig = SIGNAL,
        threads: int | None = None,
        planner_effort: str = "FFTW_MEASURE",
    ) -> None:
        if config.n_fft % config.hop_length:
            raise ValueError(
                f"n_fft must be a multiple of hop_length. Received: n_fft={config.n_fft}, "
                f"hop_length={config.hop_length}"
            )
        self.config = config
        self.threads = threads or default_threads()
        self.planner_effort = planner_effort
        self.window = np.hanning(config.n_fft + 1)[:-1].astype(np.float32)  # periodic Hann
        self._overlap = config.n_fft // config.hop_length
        # 1 / summed squared window where all `overlap` frames meet: (hop,)
        self._steady_gain = 1.0 / (self.window**2).reshape(self._overlap, -1).sum(axis=0)

    def _run(self, job, n_frames: int) -> list:
        ranges = split_frames(n_frames, self.threads)
        if len(ranges) == 1:
            return [job(*ranges[0])]
        return list(_pool(self.threads).map(lambda r: job(*r), ranges))

    def empty_spectrogram(self, n_frames: int, channels: int) -> np.ndarray:
        """An aligned complex64 (n_frames, n_freqs, channels) array FFTW can write straight into."""
        return _pyfftw().empty_aligned((n_frames, self.config.n_freqs, channels), dtype=np.complex64)

    def _frames(self, audio: np.ndarray, start: int, count: int) -> np.ndarray:
        """Frames start … start+count-1 of audio (n_samples, ch): (count, n_fft, ch), unwindowed.

        Frame t is audio[t·hop − n_fft/2 : t·hop + n_fft/2], zeros outside the signal. Inside the
        signal this is a strided view (no copy); at the edges a small zero-padded segment.
        """
        cfg = self.config
        n_samples, channels = audio.shape
        first = start * cfg.hop_length - cfg.n_fft // 2
        length = (count - 1) * cfg.hop_length + cfg.n_fft
        if first >= 0 and first + length <= n_samples:
            source, offset = audio, first
        else:
            source, offset = np.zeros((length, channels), dtype=np.float32), 0
            lo, hi = max(first, 0), min(first + length, n_samples)
            if hi > lo:
                source[lo - first : hi - first] = audio[lo:hi]
        return np.lib.stride_tricks.as_strided(
            source[offset:],
            shape=(count, cfg.n_fft, channels),
            strides=(cfg.hop_length * source.strides[0], *source.strides),
            writeable=False,
        )

    def forward(
        self,
        audio: np.ndarray,
        out: np.ndarray | None = None,
        *,
        first_frame: int = 0,
        n_frames: int | None = None,
    ) -> np.ndarray:
        """audio (n_samples, channels) float → spectrogram (n_frames, n_freqs, channels) complex64.

        first_frame, n_frames: compute only frames first_frame … first_frame+n_frames-1 of the
        signal's spectrogram (all of it by default) — the separation engine works block by block.
        out: where to write the spectrogram (e.g. from `empty_spectrogram`, reused across calls
        to spare the allocation); a new array is made when None.
        """
        if audio.ndim != 2:
            raise ValueError(f"audio must be (n_samples, channels). Received shape {audio.shape}")
        cfg = self.config
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        n_samples, channels = audio.shape
        if n_frames is None:
            n_frames = n_frames_for(n_samples, cfg.hop_length) - first_frame
        if first_frame < 0 or n_frames < 1:
            raise ValueError(f"no frames to compute. Received first_frame={first_frame}, n_frames={n_frames}")
        shape = (n_frames, cfg.n_freqs, channels)
        if out is None:
            out = self.empty_spectrogram(n_frames, channels)
        elif out.shape != shape or out.dtype != np.complex64:
            raise ValueError(f"out must be complex64 {shape}. Received {out.dtype} {out.shape}")
        spec = out
        # FFTW writes whole chunks straight into `spec` when it is aligned and contiguous
        direct = _fftw_ready(spec)
        # the window for interleaved channels, so numpy multiplies long contiguous rows
        window = np.repeat(self.window, channels)

        def job(first: int, stop: int) -> None:
            plans = thread_plans(cfg.n_fft, channels, self.planner_effort)
            flat = plans.real.reshape(CHUNK_FRAMES, -1)  # (CHUNK_FRAMES, n_fft · channels), a view
            for start in range(first, stop, CHUNK_FRAMES):
                count = min(CHUNK_FRAMES, stop - start)
                frames = self._frames(audio, first_frame + start, count)
                np.multiply(frames.reshape(count, -1), window, out=flat[:count])
                if direct and count == CHUNK_FRAMES:
                    plans.forward(plans.real, spec[start : start + count])
                else:
                    spec[start : start + count] = plans.forward(plans.real, plans.spec)[:count]

        self._run(job, n_frames)
        return spec

    def inverse(
        self,
        spec: np.ndarray,
        n_samples: int,
        out: np.ndarray | None = None,
        *,
        first_frame: int = 0,
        accumulate: bool = False,
    ) -> np.ndarray:
        """spectrogram (n_frames, n_freqs, channels) → audio (n_samples, channels) float32.

        Weighted overlap-add normalised by the summed squared window. Workers stream their
        frame ranges through a small accumulator and write finished hops straight into `out`;
        the few hops where two ranges meet are added after they join.

        accumulate: `spec` holds frames first_frame … of an n_samples signal; their share of
        it is added to `out` (which must be given). Adding the shares of consecutive frame
        ranges, each normalised by the whole signal's window sum, gives the same audio as
        one inverse of the whole spectrogram: the engine inverts block by block this way.
        """
        cfg = self.config
        if spec.ndim != 3 or spec.shape[1] != cfg.n_freqs:
            raise ValueError(
                f"spectrogram must be (n_frames, {cfg.n_freqs}, channels). Received shape {spec.shape}"
            )
        n_frames, _, channels = spec.shape
        total_frames = n_frames_for(n_samples, cfg.hop_length)
        if accumulate:
            if out is None or first_frame < 0 or first_frame + n_frames > total_frames:
                raise ValueError(
                    f"accumulate needs out and frames inside the signal's {total_frames}. "
                    f"Received first_frame={first_frame}, n_frames={n_frames}, out={out is not None}"
                )
        elif first_frame != 0 or n_frames != total_frames:
            raise ValueError(f"{n_frames} frames do not match {n_samples} samples (expected {total_frames})")
        if out is None:
            out = np.empty((n_samples, channels), dtype=np.float32)
        elif out.shape != (n_samples, channels) or out.dtype not in (np.float32, np.float16):
            raise ValueError(f"out must be float32 (or float16) {(n_samples, channels)}. "
                             f"Received {out.dtype} {out.shape}")
        hop, overlap = cfg.hop_length, self._overlap
        window = np.repeat(self.window, channels)  # for interleaved channels (see forward)
        direct = _fftw_ready(spec)

        def job(first: int, stop: int) -> tuple[int, np.ndarray]:
            plans = thread_plans(cfg.n_fft, channels, self.planner_effort)
            # hop rows r … r+count+overlap-2 of the padded signal: (CHUNK + overlap - 1, hop, ch)
            acc = np.zeros((CHUNK_FRAMES + overlap - 1, hop, channels), dtype=np.float32)
            for start in range(first, stop, CHUNK_FRAMES):
                count = min(CHUNK_FRAMES, stop - start)
                if direct and count == CHUNK_FRAMES:
                    frames = plans.inverse(spec[start : start + count], plans.real)
                else:
                    plans.spec[:count] = spec[start : start + count]
                    frames = plans.inverse(plans.spec, plans.real)[:count]
                flat = frames.reshape(count, -1)
                np.multiply(flat, window, out=flat)
                # each frame as `overlap` consecutive hops: (count, overlap, hop, channels)
                pieces = frames.reshape(count, overlap, hop, channels)
                for k in range(overlap):
                    acc[k : k + count] += pieces[:, k]
                # complete hops
                self._emit(out, first_frame + start, acc[:count], total_frames, add=accumulate)
                acc[: overlap - 1] = acc[count : count + overlap - 1]  # carry the open hops
                acc[overlap - 1 :] = 0.0
            return first_frame + stop, acc[: overlap - 1].copy()

        carries = self._run(job, n_frames)
        # the last range's open hops are the signal's end: stored first, since a short last
        # range leaves them overlapping the previous range's open hops, which are then added
        *inner, (row, carry) = carries
        self._emit(out, row, carry, total_frames, add=accumulate)
        for row, carry in inner:
            self._emit(out, row, carry, total_frames, add=True)
        return out

    def _emit(self, out: np.ndarray, row: int, hops: np.ndarray, n_frames: int, add: bool) -> None:
        """Normalise hop rows row … row+len(hops)-1 of the padded signal and store them in out.

        hops: (n_rows, hop, channels). Padded row r holds samples (r − lead)·hop … of out, where
        lead = n_fft / 2 / hop; parts outside out (the padding) are dropped.
        """
        hop = self.config.hop_length
        lead = self.config.n_fft // 2 // hop
        first = (row - lead) * hop
        lo, hi = max(first, 0), min(first + len(hops) * hop, len(out))
        if hi <= lo:
            return
        whole = lo == first and hi == first + len(hops) * hop
        if whole and row >= self._overlap - 1 and row + len(hops) <= n_frames:
            # all overlap frames present: the steady-state gain; hop rows as (n_rows, hop · ch)
            channels = hops.shape[-1]
            target = out[lo:hi].reshape(len(hops), -1)
            rows = hops.reshape(len(hops), -1)
            gain = np.repeat(self._steady_gain, channels)
        else:
            target = out[lo:hi]
            rows = hops.reshape(-1, hops.shape[-1])[lo - first : hi - first]
            gain = self._inverse_window_sum(row, len(hops), n_frames).reshape(-1, 1)[lo - first : hi - first]
        if add:
            target += rows * gain
        else:
            np.multiply(rows, gain, out=target)

    def _inverse_window_sum(self, row: int, n_rows: int, n_frames: int) -> np.ndarray:
        """1 / summed squared window on hop rows row … row+n_rows-1: (n_rows, hop) float32."""
        overlap = self._overlap
        pieces = (self.window**2).reshape(overlap, self.config.hop_length)
        rows = np.arange(row, row + n_rows)[:, None]
        total = np.zeros((n_rows, self.config.hop_length), dtype=np.float32)
        for k in range(overlap):
            total += np.where((rows - k >= 0) & (rows - k < n_frames), pieces[k], np.float32(0.0))
        with np.errstate(divide="ignore"):
            return np.float32(1.0) / total  # inf only at padded sample 0, which is dropped


def magnitude(spec: np.ndarray, n_bins: int = SIGNAL.n_bins) -> np.ndarray:
    """What the model sees: |spec| of bins 0 … n_bins-1.

    spec (n_frames, n_freqs, channels) complex64 → (n_frames, n_bins, channels) float32.
    """
    return np.abs(spec[:, :n_bins, :])
