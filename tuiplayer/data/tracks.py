"""Finding and reading the tracks of a multitrack dataset (DESIGN.md §5, dataset layout).

Two layouts, which may be mixed in one dataset folder:

- MUSDB18-HQ folders: ``DATASET/[train|test/]<track>/{mixture,vocals,drums,bass,other}.wav``
  (``.flac`` also accepted; ``mixture`` may be missing, it is then the sum of the stems);
- MUSDB18 files: ``DATASET/[train|test/]<track>.stem.mp4``, one file holding five audio
  streams in the order mixture, drums, bass, other, vocals (decoded through ffmpeg).

`find_tracks` checks every track it finds from the file headers (stems present, one sample
rate, one length) and raises `BadInput` with one line naming the track and the problem, so a
training run fails before it starts, not hours later. `Track.load_stems` then decodes the
audio as float32 stereo at `SIGNAL.sample_rate` (a consistent other rate is resampled).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tuiplayer.audio.io import load
from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.errors import BadInput

MIXTURE = "mixture"
"""File (and stream) name of the mixture in a track."""

AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac")
"""Suffixes of stem files in the folder layout, in order of preference."""

STEM_MP4_SUFFIX = ".stem.mp4"
"""Suffix of a MUSDB18 multi-stream file."""

STEM_MP4_STREAMS: dict[str, int] = {MIXTURE: 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4}
"""Audio stream index of each part in a MUSDB18 `.stem.mp4`."""

SUBSETS: tuple[str, ...] = ("train", "test")
"""Sub-folders a dataset may be split into."""

_LAYOUT_HINT = (
    "expected <track>/{mixture,vocals,drums,bass,other}.wav|.flac or <track>.stem.mp4, "
    "optionally under train/ or test/"
)


@dataclass(frozen=True)
class AudioRef:
    """Where one part of a track is: a file, and an audio stream inside it (0 for WAV/FLAC)."""

    path: Path
    stream: int = 0


@dataclass(frozen=True)
class Track:
    """One song of a dataset, checked from its headers (nothing decoded yet).

    name: the folder name, or the file name without ``.stem.mp4``.
    path: the track folder, or the ``.stem.mp4`` file.
    subset: "train", "test", or None when the dataset is not split.
    stems: where each stem is, in STEMS order.
    mixture: where the mixture is; None when the folder has no mixture file.
    sample_rate: the files' own rate in Hz (stems are resampled to SIGNAL.sample_rate on load).
    n_samples: samples per stem at `sample_rate` (for `.stem.mp4` an estimate from the
        container's duration until the audio is decoded).
    """

    name: str
    path: Path
    subset: str | None
    stems: tuple[AudioRef, ...]
    mixture: AudioRef | None
    sample_rate: int
    n_samples: int

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.sample_rate

    def load_stem_array(self) -> np.ndarray:
        """All stems: float32 (len(STEMS), n_samples, 2) at SIGNAL.sample_rate, STEMS order.

        Raises BadInput when a file cannot be decoded or the decoded stems differ in length.
        """
        parts = [load(ref.path, ref.stream).samples for ref in self.stems]
        lengths = {stem: len(samples) for stem, samples in zip(STEMS, parts, strict=True)}
        if len(set(lengths.values())) > 1:
            raise BadInput(f"{self.path}: stems of different lengths ({_describe(lengths, 'samples')})")
        return np.stack(parts)

    def load_stems(self) -> dict[str, np.ndarray]:
        """Each stem as float32 (n_samples, 2) at SIGNAL.sample_rate, keyed in STEMS order."""
        return dict(zip(STEMS, self.load_stem_array(), strict=True))

    def load_mixture(self) -> np.ndarray:
        """The mixture: float32 (n_samples, 2) at SIGNAL.sample_rate.

        Read from the mixture file when there is one (`find_tracks` checked that its length
        matches the stems'), otherwise the sum of the stems.
        """
        if self.mixture is None:
            return self.load_stem_array().sum(axis=0, dtype=np.float32)
        return load(self.mixture.path, self.mixture.stream).samples

    @property
    def native_rate(self) -> bool:
        """Whether the files are at SIGNAL.sample_rate already (read without resampling)."""
        return self.sample_rate == SIGNAL.sample_rate


def find_tracks(root: str | os.PathLike[str], subset: str | None = None) -> list[Track]:
    """All tracks under a dataset folder, sorted by (subset, name).

    root: a dataset folder (split into train/ and test/ or not), or one track folder.
    subset: "train" or "test" to read only that sub-folder; None reads every track.
    Raises BadInput (one line naming the track and the problem) for a missing folder, an
    empty dataset, a missing stem file, stems of different lengths or sample rates, or a
    `.stem.mp4` without the five MUSDB18 streams.
    """
    root = Path(root)
    if not root.exists():
        raise BadInput(f"{root}: no such dataset folder")
    if not root.is_dir():
        raise BadInput(f"{root}: not a folder (a dataset is a folder of tracks; {_LAYOUT_HINT})")
    if subset is not None and subset not in SUBSETS:
        raise BadInput(f"subset must be one of {', '.join(SUBSETS)} or None. Received: {subset!r}")
    if subset is not None:
        folders = [(root / subset, subset)]
        if not folders[0][0].is_dir():
            raise BadInput(f"{root}: has no {subset}/ folder")
    elif any((root / name).is_dir() for name in SUBSETS):
        folders = [(root / name, name) for name in SUBSETS if (root / name).is_dir()]
    else:
        folders = [(root, None)]
    tracks: list[Track] = []
    for folder, name in folders:
        if _is_track_folder(folder):  # the root is one track
            tracks.append(_folder_track(folder, name))
            continue
        tracks.extend(_scan(folder, name))
    if not tracks:
        where = f"{root}/{subset}" if subset else str(root)
        raise BadInput(f"{where}: no tracks found ({_LAYOUT_HINT})")
    return sorted(tracks, key=lambda track: (track.subset or "", track.name))


def _scan(folder: Path, subset: str | None) -> Iterator[Track]:
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and _is_track_folder(entry):
            yield _folder_track(entry, subset)
        elif entry.is_file() and entry.name.lower().endswith(STEM_MP4_SUFFIX):
            yield _stem_mp4_track(entry, subset)


def _is_track_folder(folder: Path) -> bool:
    """A folder holding at least one mixture or stem file (it must then hold all stems)."""
    return any(_find_part(folder, part) is not None for part in (MIXTURE, *STEMS))


def _find_part(folder: Path, part: str) -> Path | None:
    for suffix in AUDIO_SUFFIXES:
        for candidate in (folder / f"{part}{suffix}", folder / f"{part}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def _folder_track(folder: Path, subset: str | None) -> Track:
    files: dict[str, Path] = {}
    for part in (*STEMS, MIXTURE):
        found = _find_part(folder, part)
        if found is None and part != MIXTURE:
            raise BadInput(
                f"{folder}: missing stem file {part}.wav (or {part}.flac); "
                f"a track needs {', '.join(STEMS)}"
            )
        if found is not None:
            files[part] = found
    rates: dict[str, int] = {}
    lengths: dict[str, int] = {}
    for part, path in files.items():
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError) as error:
            raise BadInput(f"{folder}: cannot read {path.name} ({_first_line(error)})") from None
        if info.frames <= 0:
            raise BadInput(f"{folder}: {path.name} holds no audio samples")
        rates[part], lengths[part] = int(info.samplerate), int(info.frames)
    if len(set(rates.values())) > 1:
        raise BadInput(f"{folder}: stems of different sample rates ({_describe(rates, 'Hz')})")
    if len(set(lengths.values())) > 1:
        raise BadInput(f"{folder}: stems of different lengths ({_describe(lengths, 'samples')})")
    return Track(
        name=folder.name,
        path=folder,
        subset=subset,
        stems=tuple(AudioRef(files[stem]) for stem in STEMS),
        mixture=AudioRef(files[MIXTURE]) if MIXTURE in files else None,
        sample_rate=next(iter(rates.values())),
        n_samples=next(iter(lengths.values())),
    )


def _stem_mp4_track(path: Path, subset: str | None) -> Track:
    streams, duration_s = _probe_streams(path)
    if len(streams) < len(STEM_MP4_STREAMS):
        raise BadInput(
            f"{path}: has {len(streams)} audio streams, a MUSDB18 .stem.mp4 needs "
            f"{len(STEM_MP4_STREAMS)} (mixture, drums, bass, other, vocals)"
        )
    rates = {part: int(streams[index].get("sample_rate", 0)) for part, index in STEM_MP4_STREAMS.items()}
    if len(set(rates.values())) > 1:
        raise BadInput(f"{path}: streams of different sample rates ({_describe(rates, 'Hz')})")
    sample_rate = rates[MIXTURE]
    if sample_rate <= 0:
        raise BadInput(f"{path}: ffprobe reports no sample rate for its audio streams")
    return Track(
        name=path.name[: -len(STEM_MP4_SUFFIX)],
        path=path,
        subset=subset,
        stems=tuple(AudioRef(path, STEM_MP4_STREAMS[stem]) for stem in STEMS),
        mixture=AudioRef(path, STEM_MP4_STREAMS[MIXTURE]),
        sample_rate=sample_rate,
        n_samples=round(duration_s * sample_rate),
    )


def _probe_streams(path: Path) -> tuple[list[dict], float]:
    """The audio streams of a container (ffprobe's JSON) and its duration in seconds."""
    if shutil.which("ffprobe") is None:
        raise BadInput(f"{path}: reading .stem.mp4 files needs ffmpeg/ffprobe, which is not installed")
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         "-select_streams", "a", str(path)],
        capture_output=True, text=True, check=False,
    )
    if probe.returncode != 0:
        reason = probe.stderr.strip().splitlines()
        raise BadInput(f"{path}: not a readable .stem.mp4 ({reason[-1] if reason else 'ffprobe failed'})")
    meta = json.loads(probe.stdout or "{}")
    duration = float(meta.get("format", {}).get("duration", 0.0) or 0.0)
    return meta.get("streams", []), duration


def _describe(values: dict[str, int], unit: str) -> str:
    return ", ".join(f"{part} {value} {unit}" for part, value in values.items())


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__

