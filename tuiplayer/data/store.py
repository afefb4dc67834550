"""The stems of a set of tracks, read by excerpt.

Training reads many short random excerpts. `StemStore.open` decodes every track once and
holds its stems in memory (the default: fast, and the only way for `.stem.mp4` files or
rates other than SIGNAL.sample_rate), or, with ``in_memory=False``, reads each excerpt
straight from WAV/FLAC files at SIGNAL.sample_rate (for datasets larger than memory; other
tracks are still decoded into memory).

Memory: 4 stems × 2 channels × 4 bytes = 32 bytes per sample, about 85 MB per minute of audio
(MUSDB18-HQ's 100 training songs: about 34 GB).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tuiplayer.audio.io import to_stereo
from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.data.tracks import AudioRef, Track
from tuiplayer.errors import BadInput


@dataclass(frozen=True)
class _FileStems:
    """A track read from its WAV/FLAC files on every excerpt (files at SIGNAL.sample_rate)."""

    track: Track

    @property
    def n_samples(self) -> int:
        return self.track.n_samples

    def read_into(self, stem_index: int, start: int, out: np.ndarray) -> None:
        ref = self.track.stems[stem_index]
        with sf.SoundFile(str(ref.path)) as handle:
            handle.seek(start)
            samples = handle.read(len(out), dtype="float32", always_2d=True)
        out[: len(samples)] = to_stereo(samples)


@dataclass(frozen=True)
class _MemoryStems:
    """A decoded track. stems: float32 (len(STEMS), n_samples, 2)."""

    stems: np.ndarray

    @property
    def n_samples(self) -> int:
        return self.stems.shape[1]

    def read_into(self, stem_index: int, start: int, out: np.ndarray) -> None:
        out[:] = self.stems[stem_index, start : start + len(out)]


class StemStore:
    """Excerpts of the stems of many tracks. Thread-safe (reads only).

    tracks: the tracks, in the order `read` indexes them.
    lengths: samples per track at SIGNAL.sample_rate, int64 (n_tracks,).
    """

    def __init__(self, tracks: Sequence[Track], sources: Sequence[_MemoryStems | _FileStems]) -> None:
        if len(tracks) != len(sources):
            raise ValueError(f"one source per track. Received {len(tracks)} tracks, {len(sources)} sources")
        if not tracks:
            raise BadInput("no tracks to train on (the track list is empty)")
        self.tracks = tuple(tracks)
        self._sources = tuple(sources)
        self.lengths = np.array([source.n_samples for source in sources], dtype=np.int64)

    @classmethod
    def open(cls, tracks: Sequence[Track], *, in_memory: bool = True, workers: int | None = None) -> StemStore:
        """Decode the tracks (threads: `workers`, default the machine's cores) or open their files.

        in_memory=False reads WAV/FLAC tracks at SIGNAL.sample_rate from disk per excerpt;
        other tracks (`.stem.mp4`, other rates) are decoded into memory all the same.
        Raises BadInput when a track cannot be decoded.
        """
        to_decode = [i for i, track in enumerate(tracks) if in_memory or not _readable_in_place(track)]
        sources: list[_MemoryStems | _FileStems | None] = [None] * len(tracks)
        for i, track in enumerate(tracks):
            if i not in to_decode:
                sources[i] = _FileStems(track)
        with ThreadPoolExecutor(max_workers=max(1, workers or os.cpu_count() or 1)) as pool:
            decoded = pool.map(lambda i: tracks[i].load_stem_array(), to_decode)
            for i, stems in zip(to_decode, decoded, strict=True):
                sources[i] = _MemoryStems(stems)
        return cls(tracks, [source for source in sources if source is not None])

    @classmethod
    def from_arrays(cls, stems: Sequence[np.ndarray], names: Sequence[str] | None = None) -> StemStore:
        """A store of stems already in memory, each float32 (len(STEMS), n_samples, 2).

        For tests and for generated audio that never touches the disk; the tracks get
        placeholder paths.
        """
        names = list(names) if names is not None else [f"track{i}" for i in range(len(stems))]
        tracks, sources = [], []
        for name, array in zip(names, stems, strict=True):
            if array.ndim != 3 or array.shape[0] != len(STEMS) or array.shape[2] != 2:
                raise ValueError(f"stems must be ({len(STEMS)}, n_samples, 2). Received shape {array.shape}")
            tracks.append(Track(name, Path(name), None, tuple(AudioRef(Path(name)) for _ in STEMS), None,
                                SIGNAL.sample_rate, array.shape[1]))
            sources.append(_MemoryStems(np.ascontiguousarray(array, dtype=np.float32)))
        return cls(tracks, sources)

    @property
    def nbytes(self) -> int:
        """Bytes of audio held in memory."""
        return sum(source.stems.nbytes for source in self._sources if isinstance(source, _MemoryStems))

    def read(self, track_index: int, stem_index: int, start: int, n_samples: int,
             out: np.ndarray | None = None) -> np.ndarray:
        """Samples start … start+n_samples-1 of one stem: float32 (n_samples, 2).

        Samples outside the track (start < 0, or past its end) are zeros.
        out: a float32 (n_samples, 2) array to write into instead of a new one.
        """
        if out is None:
            out = np.empty((n_samples, 2), dtype=np.float32)
        length = int(self.lengths[track_index])
        lo, hi = max(start, 0), min(start + n_samples, length)
        if hi <= lo:
            out[:] = 0.0
            return out
        out[: lo - start] = 0.0
        out[hi - start :] = 0.0
        self._sources[track_index].read_into(stem_index, lo, out[lo - start : hi - start])
        return out


def _readable_in_place(track: Track) -> bool:
    """Whether excerpts can be read from the files directly (libsndfile, no resampling)."""
    return track.native_rate and all(ref.stream == 0 for ref in track.stems)
