"""How fast the training input pipeline makes examples: ``python -m tuiplayer.data.speed``.

Measures `iterate_batches` (and, with ``--tf``, `tuiplayer.nn.pipeline.make_dataset`) on noise
stems held in memory: examples per second of wall-clock time, and the process's CPU seconds
per example — the second does not depend on what else the machine is running, so
`cores / cpu_s_per_example` bounds the rate on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import numpy as np

from tuiplayer.config import STEMS
from tuiplayer.data.augment import DEFAULT_AUGMENT, AugmentConfig
from tuiplayer.data.examples import iterate_batches
from tuiplayer.data.store import StemStore

BENCH_TRACKS = 4
"""Tracks in the benchmark store."""

BENCH_TRACK_S = 30.0
"""Length of each benchmark track in seconds."""


@dataclass(frozen=True)
class SpeedReport:
    """examples_per_s: wall-clock rate; cpu_s_per_example: process CPU time per example;
    first_batch_s: time to the first batch (FFTW planning, thread start); load_avg: the
    machine's 1-minute load average when done (other programs running lower the rate)."""

    examples_per_s: float
    cpu_s_per_example: float
    first_batch_s: float
    batch_size: int
    n_batches: int
    workers: int
    load_avg: float


def measure(batches: Iterable[tuple[object, ...]], batch_size: int, n_batches: int, workers: int) -> SpeedReport:
    """Time n_batches batches of an iterable, after its first (not counted)."""
    iterator: Iterator[tuple[object, ...]] = iter(batches)
    start = time.perf_counter()
    next(iterator)
    first = time.perf_counter() - start
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n_batches):
        next(iterator)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n_examples = n_batches * batch_size
    return SpeedReport(round(n_examples / wall, 2), round(cpu / n_examples, 4), round(first, 3), batch_size,
                       n_batches, workers, round(os.getloadavg()[0], 2))


def noise_store(n_tracks: int = BENCH_TRACKS, seconds: float = BENCH_TRACK_S, seed: int = 0) -> StemStore:
    """Stems of white noise, in memory: n_tracks tracks of `seconds`."""
    rng = np.random.default_rng(seed)
    n_samples = round(seconds * 44100)
    return StemStore.from_arrays(
        [(0.1 * rng.standard_normal((len(STEMS), n_samples, 2), dtype=np.float32)) for _ in range(n_tracks)]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tuiplayer.data.speed", description="Examples per second of the training input pipeline."
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=20, help="batches timed, after a first one")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-augment", action="store_true", help="no augmentation")
    parser.add_argument("--tf", action="store_true", help="time tuiplayer.nn.pipeline.make_dataset too")
    args = parser.parse_args(argv)
    store = noise_store()
    augment: AugmentConfig | None = None if args.no_augment else DEFAULT_AUGMENT
    reports = {
        "numpy": measure(iterate_batches(store, args.batch_size, 0, augment, workers=args.workers),
                         args.batch_size, args.batches, args.workers),
    }
    if args.tf:
        from tuiplayer.nn.pipeline import make_dataset  # only here: it brings TensorFlow

        dataset = make_dataset(store, args.batch_size, 0, augment, workers=args.workers)
        reports["tf.data"] = measure(dataset, args.batch_size, args.batches, args.workers)
    print(json.dumps({name: asdict(report) for name, report in reports.items()}, indent=1))


if __name__ == "__main__":
    main()
