"""Training examples: random excerpts of the stems → magnitude spectrograms, in batches.

One example is one model block. Its four stems are read from a `StemStore` (one track at one
offset, or with probability `AugmentConfig.p_remix` each stem from its own random track at its
own offset), augmented (`tuiplayer.data.augment`), and transformed with the project's STFT
(`tuiplayer.dsp.stft.Stft`, pyFFTW). The mixture is the sum of the augmented stems; its STFT is
the sum of theirs (the STFT is linear), so it costs no transform of its own.

Frames are the ones the player sees inside a song: the excerpt holds
(n_frames − 1)·hop_length + n_fft samples (199 680 at the §2 numbers), so each of the n_frames
frames is centred at hop multiples and lies wholly inside the excerpt — no zero padding at the
block's edges (only where the excerpt itself runs past the start or the end of a track).

Layout (time-first, channels-last, stems last in STEMS order — as the models' masks and the
losses in `tuiplayer.nn.models` have them, so `fit(x=mixture, y=stems)` needs no transpose):

    mixture  float32 (batch, n_frames, n_bins, channels)            = (B, 192, 1024, 2)
    targets  float32 (batch, n_frames, n_bins, channels, len(STEMS)) = (B, 192, 1024, 2, 4)
    labels   float32 (batch, len(STEMS), len(STEMS) + 1)            = (B, 4, 5)
    mixture_spec (optional) complex64 (batch, n_frames, n_freqs, channels) = (B, 192, 2049, 2)

Each example is the sum of four *parts*; ``targets[..., k]`` is part k's magnitude and the
labels say what part k is (`tuiplayer.nn.models.losses`): for a multitrack song part k is stem
k (FULL_LABELS), so ``targets`` are the stems, ``targets[..., j]`` has the mixture's shape and
``targets.sum(-1)`` ≥ ``mixture`` (magnitudes). Real recordings (`tuiplayer.data.real`) make
parts that are sums of stems, or only a lower bound of one.

`iterate_batches` yields these as numpy arrays (no TensorFlow: the trainer can use it under the
JAX or PyTorch Keras backends); examples are made by a pool of threads (numpy, scipy and FFTW
release the GIL) and are deterministic for a seed whatever the number of workers.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tuiplayer.config import SIGNAL, STEMS, SignalConfig
from tuiplayer.data.augment import DEFAULT_AUGMENT, AugmentConfig, augment_stems
from tuiplayer.data.labels import FULL_LABELS
from tuiplayer.data.store import StemStore
from tuiplayer.data.tracks import Track
from tuiplayer.dsp.stft import Stft

if TYPE_CHECKING:
    from tuiplayer.data.real import RealSources

STEM_AXIS = -1
"""Axis of the stems in a batch of stem spectrograms (B, n_frames, n_bins, 2, len(STEMS))."""

BATCH_DTYPES: tuple[type[np.generic], ...] = (np.float32, np.float32, np.float32, np.complex64)
"""dtypes of a batch's arrays: mixture, targets, labels, mixture_spec (the last only when asked for)."""

@dataclass(frozen=True)
class ExampleConfig:
    """What an example holds and how it is computed.

    signal: STFT geometry and block size (SIGNAL unless a model is trained with other numbers).
    with_mixture_spec: also return the complex mixture STFT of the block, all n_freqs bins
        (for losses in the complex or time domain); a third array in each batch.
    planner_effort: FFTW planning effort per worker thread ("FFTW_MEASURE": ~0.3 s once per
        thread, the fastest transforms; "FFTW_ESTIMATE": instant, for tests).
    """

    signal: SignalConfig = SIGNAL
    with_mixture_spec: bool = False
    planner_effort: str = "FFTW_MEASURE"

    def __post_init__(self) -> None:
        if self.signal.channels != 2:
            raise ValueError(f"examples are stereo. Received signal.channels={self.signal.channels}")

    @property
    def excerpt_samples(self) -> int:
        """Audio samples of one example: (n_frames − 1)·hop_length + n_fft (199 680)."""
        return (self.signal.n_frames - 1) * self.signal.hop_length + self.signal.n_fft

    @property
    def lead_frames(self) -> int:
        """STFT frames of the excerpt before the block's first (n_fft/2 / hop_length = 2)."""
        return self.signal.n_fft // 2 // self.signal.hop_length

    def shapes(self, batch_size: int) -> tuple[tuple[int, ...], ...]:
        """Shapes of the arrays in one batch: mixture, targets, labels[, mixture_spec]."""
        cfg = self.signal
        block = (cfg.n_frames, cfg.n_bins, cfg.channels)
        shapes: tuple[tuple[int, ...], ...] = ((batch_size, *block), (batch_size, *block, len(STEMS)),
                                               (batch_size, len(STEMS), len(STEMS) + 1))
        if self.with_mixture_spec:
            shapes += ((batch_size, cfg.n_frames, cfg.n_freqs, cfg.channels),)
        return shapes


DEFAULT_EXAMPLES = ExampleConfig()
"""Examples at the SIGNAL numbers, magnitudes only."""


@dataclass(frozen=True)
class ExcerptPlan:
    """Where each stem of one example comes from (STEMS order).

    track: int (len(STEMS),) track index of each stem; start: int (len(STEMS),) first sample.
    """

    track: np.ndarray
    start: np.ndarray


def draw_plan(rng: np.random.Generator, lengths: np.ndarray, excerpt_samples: int, p_remix: float) -> ExcerptPlan:
    """Pick the tracks and offsets of one example.

    lengths: samples per track, (n_tracks,). Tracks are drawn uniformly; an offset uniformly
    among those that keep the excerpt inside the track (0 for a track shorter than it).
    With probability p_remix each stem gets its own track and offset, else all share one.
    """
    n_stems = len(STEMS)
    remix = rng.random() < p_remix
    track = rng.integers(len(lengths), size=n_stems if remix else 1)
    room = np.maximum(lengths[track] - excerpt_samples, 0)
    start = (rng.random(len(track)) * (room + 1)).astype(np.int64)
    return ExcerptPlan(np.resize(track, n_stems), np.resize(start, n_stems))


def read_excerpt(store: StemStore, plan: ExcerptPlan, excerpt_samples: int) -> np.ndarray:
    """The planned excerpt of each stem: float32 (len(STEMS), excerpt_samples, 2)."""
    stems = np.empty((len(STEMS), excerpt_samples, 2), dtype=np.float32)
    for j in range(len(STEMS)):
        store.read(int(plan.track[j]), j, int(plan.start[j]), excerpt_samples, out=stems[j])
    return stems


class ExampleMaker:
    """Makes examples from a store; thread-safe (each thread keeps its own STFT buffer)."""

    def __init__(self, store: StemStore, augment: AugmentConfig | None = None,
                 config: ExampleConfig = DEFAULT_EXAMPLES, real: RealSources | None = None,
                 real_share: float = 0.0) -> None:
        """real, real_share: examples made from real recordings (`tuiplayer.data.real`) this
        often, else from the store's multitrack songs."""
        if augment is not None and augment.sample_rate != config.signal.sample_rate:
            raise ValueError(
                f"augment.sample_rate must equal the signal's. Received {augment.sample_rate}, "
                f"{config.signal.sample_rate}"
            )
        self.store = store
        self.real, self.real_share = real, real_share
        self.augment = augment if augment is not None else AugmentConfig.off()
        self.config = config
        self.stft = Stft(config.signal, threads=1, planner_effort=config.planner_effort)
        self._local = threading.local()

    def excerpt_audio(self, rng: np.random.Generator) -> np.ndarray:
        """One augmented excerpt: float32 (len(STEMS), excerpt_samples, 2); mixture = sum(axis=0)."""
        plan = draw_plan(rng, self.store.lengths, self.config.excerpt_samples, self.augment.p_remix)
        stems = read_excerpt(self.store, plan, self.config.excerpt_samples)
        augment_stems(stems, self.augment, rng)
        return stems

    def spectrograms(self, stems: np.ndarray, mixture_out: np.ndarray, stems_out: np.ndarray,
                     spec_out: np.ndarray | None = None) -> None:
        """Magnitudes of one excerpt's block, written into the given arrays.

        stems: float32 (len(STEMS), excerpt_samples, 2).
        mixture_out: float32 (n_frames, n_bins, 2) ← |STFT(Σ stems)|.
        stems_out: float32 (n_frames, n_bins, 2, len(STEMS)) ← |STFT(stem)|, stems last.
        spec_out: complex64 (n_frames, n_freqs, 2) ← STFT(Σ stems), when given.
        """
        cfg = self.config.signal
        frames = slice(self.config.lead_frames, self.config.lead_frames + cfg.n_frames)
        buffer = self._buffer(stems.shape[1])
        bins = cfg.n_freqs if spec_out is not None else cfg.n_bins
        mixture = np.zeros((cfg.n_frames, bins, stems.shape[2]), dtype=np.complex64)
        for j in range(len(STEMS)):
            spec = self.stft.forward(stems[j], out=buffer)[frames, :bins]
            np.abs(spec[:, : cfg.n_bins], out=stems_out[..., j])
            mixture += spec
        np.abs(mixture[:, : cfg.n_bins], out=mixture_out)
        if spec_out is not None:
            spec_out[:] = mixture

    def make(self, rng: np.random.Generator, mixture_out: np.ndarray, stems_out: np.ndarray,
             labels_out: np.ndarray, spec_out: np.ndarray | None = None) -> None:
        """One example into the given arrays (shapes as in `spectrograms`; labels_out
        (len(STEMS), len(STEMS) + 1))."""
        if self.real is not None and rng.random() < self.real_share:
            parts, labels = self.real.excerpt(self, rng)
        else:
            parts, labels = self.excerpt_audio(rng), FULL_LABELS
        self.spectrograms(parts, mixture_out, stems_out, spec_out)
        labels_out[:] = labels

    def example(self, seed: int, index: int) -> tuple[np.ndarray, ...]:
        """Example `index` of the stream with `seed`, as new arrays: (mixture, targets, labels[, mixture_spec]),
        the same as slot index % B of batch index // B from `iterate_batches` with batch size B."""
        arrays = tuple(np.empty(shape[1:], dtype=dtype)
                       for shape, dtype in zip(self.config.shapes(1), BATCH_DTYPES, strict=False))
        self.make(example_rng(seed, index), *arrays)
        return arrays

    def _buffer(self, n_samples: int) -> np.ndarray:
        """This thread's aligned complex64 STFT output buffer for excerpts of n_samples."""
        n_frames = n_samples // self.config.signal.hop_length + 1
        buffer = getattr(self._local, "buffer", None)
        if buffer is None or buffer.shape[0] != n_frames:
            buffer = self.stft.empty_spectrogram(n_frames, 2)
            self._local.buffer = buffer
        return buffer


def example_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of example `index` of the stream with `seed` (both >= 0)."""
    return np.random.default_rng((seed, index))


def iterate_batches(
    source: Sequence[Track] | StemStore,
    batch_size: int,
    seed: int,
    augment: AugmentConfig | None = DEFAULT_AUGMENT,
    *,
    cache_in_memory: bool = True,
    n_batches: int | None = None,
    workers: int | None = None,
    prefetch_batches: int = 2,
    config: ExampleConfig = DEFAULT_EXAMPLES,
    real: RealSources | None = None,
    real_share: float = 0.0,
) -> Iterator[tuple[np.ndarray, ...]]:
    """Batches of training examples as numpy arrays: (mixture, targets, labels[, mixture_spec]).

    source: tracks (decoded here, see `StemStore.open`) or a store opened once before.
    batch_size: examples per batch.
    seed: the stream's seed (>= 0); example k of the stream depends only on (seed, k) and
        the data, not on `workers`.
    augment: the changes applied (None: none, stems from one track at one offset).
    cache_in_memory: decode all tracks into memory (else read WAV/FLAC excerpts from disk).
    n_batches: stop after this many batches; None: endless.
    workers: threads making examples (default: the machine's cores).
    prefetch_batches: batches made ahead of the consumer.
    config: example contents (see ExampleConfig).
    real, real_share: this share of the examples made from real recordings (data.real).

    Shapes: mixture float32 (B, n_frames, n_bins, 2), targets float32 (B, n_frames, n_bins, 2,
    len(STEMS)), labels float32 (B, len(STEMS), len(STEMS) + 1), mixture_spec complex64
    (B, n_frames, n_freqs, 2) when config.with_mixture_spec.
    Each batch is made of new arrays (safe to keep).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: {batch_size}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0. Received: {seed}")
    if n_batches is not None and n_batches < 0:
        raise ValueError(f"n_batches must be >= 0 or None. Received: {n_batches}")
    store = source if isinstance(source, StemStore) else StemStore.open(source, in_memory=cache_in_memory)
    maker = ExampleMaker(store, augment, config, real, real_share)
    workers = max(1, workers or os.cpu_count() or 1)
    shapes = config.shapes(batch_size)
    return _batches(maker, shapes, seed, n_batches, workers, max(0, prefetch_batches))


def _batches(maker: ExampleMaker, shapes: tuple[tuple[int, ...], ...], seed: int, n_batches: int | None,
             workers: int, prefetch_batches: int) -> Iterator[tuple[np.ndarray, ...]]:
    batch_size = shapes[0][0]
    pending: deque[tuple[tuple[np.ndarray, ...], list[Future[None]]]] = deque()
    next_batch = 0

    def submit(pool: ThreadPoolExecutor) -> None:
        nonlocal next_batch
        arrays = tuple(np.empty(shape, dtype=dtype) for shape, dtype in zip(shapes, BATCH_DTYPES, strict=False))
        futures = []
        for i in range(batch_size):
            rng = example_rng(seed, next_batch * batch_size + i)
            outs = [array[i] for array in arrays]
            futures.append(pool.submit(maker.make, rng, *outs))
        pending.append((arrays, futures))
        next_batch += 1

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tuiplayer-examples")
    try:
        while n_batches is None or next_batch < n_batches or pending:
            while (n_batches is None or next_batch < n_batches) and len(pending) <= prefetch_batches:
                submit(pool)
            arrays, futures = pending.popleft()
            for future in futures:
                future.result()
            yield arrays
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
