"""The training input pipeline as a tf.data.Dataset.

The examples are made by the same numpy code as `tuiplayer.data.examples.iterate_batches`
(`ExampleMaker`), and example k of a seed is the same array in both, so `make_dataset` and
`iterate_batches` yield identical batches; use `iterate_batches` directly under the JAX or
PyTorch Keras backends (no TensorFlow there).

Here tf.data runs the work: a parallel, order-keeping `map` over example indices calls the
numpy code through `tf.numpy_function` (numpy, scipy and FFTW release the GIL, so the calls
really run at once), then `batch` and `prefetch`. tf.data owns every thread, so an iterator
still alive at interpreter exit cannot hang the process (a Python thread pool inside
`Dataset.from_generator` does).

TensorFlow is imported when `make_dataset` is called, not when this module is imported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tuiplayer.data.augment import DEFAULT_AUGMENT, AugmentConfig
from tuiplayer.data.examples import BATCH_DTYPES, DEFAULT_EXAMPLES, ExampleConfig, ExampleMaker
from tuiplayer.data.store import StemStore
from tuiplayer.data.tracks import Track

if TYPE_CHECKING:
    import tensorflow as tf

ENDLESS = 2**62
"""Example indices of an endless dataset (never reached)."""


def make_dataset(
    tracks: Sequence[Track] | StemStore,
    batch_size: int,
    seed: int,
    augment: AugmentConfig | None = DEFAULT_AUGMENT,
    *,
    cache_in_memory: bool = True,
    n_batches: int | None = None,
    workers: int | None = None,
    prefetch: int = 2,
    config: ExampleConfig = DEFAULT_EXAMPLES,
) -> tf.data.Dataset:
    """A dataset of (mixture, targets, labels) batches — (…, mixture_spec) with
    config.with_mixture_spec — as `iterate_batches` makes them.

    mixture float32 (batch_size, n_frames, n_bins, 2) = (B, 192, 1024, 2);
    targets float32 (batch_size, n_frames, n_bins, 2, len(STEMS)) = (B, 192, 1024, 2, 4), STEMS order;
    labels float32 (batch_size, len(STEMS), len(STEMS) + 1);
    mixture_spec complex64 (batch_size, n_frames, n_freqs, 2).

    tracks: from `find_tracks`, decoded here once (cache_in_memory) — or a StemStore to share.
    seed: every pass over the dataset yields the same batches, the same as `iterate_batches`.
    n_batches: batches per pass; None: endless (give `steps_per_epoch` to fit).
    workers: examples made at once (default: the machine's cores).
    prefetch: batches made ahead of the consumer.
    Other arguments as in `iterate_batches`. Raises BadInput for tracks that cannot be decoded.
    """
    import tensorflow as tf  # deferred: TensorFlow is slow to import

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: {batch_size}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0. Received: {seed}")
    if n_batches is not None and n_batches < 0:
        raise ValueError(f"n_batches must be >= 0 or None. Received: {n_batches}")
    store = tracks if isinstance(tracks, StemStore) else StemStore.open(tracks, in_memory=cache_in_memory)
    maker = ExampleMaker(store, augment, config)
    shapes = [shape[1:] for shape in config.shapes(1)]
    dtypes = [tf.as_dtype(dtype) for dtype in BATCH_DTYPES[: len(shapes)]]

    def example(index: np.int64) -> tuple[np.ndarray, ...]:
        return maker.example(seed, int(index))

    def call(index: tf.Tensor) -> tuple[tf.Tensor, ...]:
        arrays = tf.numpy_function(example, [index], dtypes, stateful=False, name="tuiplayer_example")
        return tuple(tf.ensure_shape(array, shape) for array, shape in zip(arrays, shapes, strict=True))

    n_examples = ENDLESS if n_batches is None else n_batches * batch_size
    dataset = tf.data.Dataset.range(n_examples).map(
        call, num_parallel_calls=max(1, workers or os.cpu_count() or 1), deterministic=True
    )
    return dataset.batch(batch_size, drop_remainder=True).prefetch(max(1, prefetch))
