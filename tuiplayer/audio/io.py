"""Reading and writing audio files.

`decode` reads a file as it is (its own rate and channels) with libsndfile, or with ffmpeg for
what libsndfile cannot read (m4a/AAC, MUSDB18 `.stem.mp4` streams, …). `load` turns that into
what separation works on: float32 stereo at `SIGNAL.sample_rate`. `restore` goes back to the
input's rate and exact length, and `write_audio` writes a file atomically, never overwriting
without `force`.

All arrays are time-first and channels-last: shape (n_samples, channels), as soundfile and
sounddevice use them.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from tuiplayer.config import SIGNAL
from tuiplayer.errors import AudioFileError
from tuiplayer.files import atomic_write, os_error_reason, shown

OUTPUT_FORMATS: dict[str, str] = {"wav": "FLOAT", "flac": "PCM_24"}
"""File formats `write_audio` writes, with the libsndfile subtype used for each."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, as decoded (before any conversion).

    path: the file.
    format: container and encoding, e.g. "WAV (PCM_16)", "FLAC (PCM_24)", "mov,mp4 (aac)".
    sample_rate: the file's own rate in Hz.
    channels: the file's own channel count.
    n_samples: samples per channel that were decoded.
    decoder: "libsndfile" or "ffmpeg".
    audio_streams: audio streams in the container (5 for a MUSDB18 `.stem.mp4`).
    warnings: problems that were repaired while decoding (non-finite samples, clipping).
    """

    path: Path
    format: str
    sample_rate: int
    channels: int
    n_samples: int
    decoder: str
    audio_streams: int = 1
    warnings: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate


@dataclass(frozen=True)
class Decoded:
    """A decoded file. samples: float32 (n_samples, channels) at info.sample_rate."""

    samples: np.ndarray
    info: AudioInfo


@dataclass(frozen=True)
class Audio:
    """Audio ready for separation. samples: float32 (n_samples, 2) at SIGNAL.sample_rate.

    source: the file it came from, whose rate and length outputs are restored to.
    """

    samples: np.ndarray
    source: AudioInfo


def ffmpeg_available() -> bool:
    """True when both ffmpeg and ffprobe are on PATH."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def check_audio_file(path: Path) -> None:
    """AudioFileError (one line) unless path is a readable, non-empty regular file."""
    try:
        status = path.stat()
    except FileNotFoundError:
        raise AudioFileError(f"{shown(path)}: no such file") from None
    except OSError as error:
        raise AudioFileError(f"{shown(path)}: {os_error_reason(error)}") from None
    if stat.S_ISDIR(status.st_mode):
        raise AudioFileError(f"{shown(path)}: is a directory, not an audio file")
    if not stat.S_ISREG(status.st_mode):
        raise AudioFileError(f"{shown(path)}: not a regular file (a pipe, device or socket); "
                             "save the audio to a file first")
    if not os.access(path, os.R_OK):
        raise AudioFileError(f"{shown(path)}: permission denied")
    if status.st_size == 0:
        raise AudioFileError(f"{shown(path)}: file is empty")


def _decode_libsndfile(path: Path) -> Decoded:
    with sf.SoundFile(path) as f:
        samples = f.read(dtype="float32", always_2d=True)
        info = AudioInfo(
            path=path,
            format=f"{f.format} ({f.subtype})",
            sample_rate=f.samplerate,
            channels=f.channels,
            n_samples=len(samples),
            decoder="libsndfile",
        )
    return Decoded(samples, info)


def _ffprobe_audio_streams(path: Path) -> tuple[str, list[dict]]:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         "-select_streams", "a", str(path)],
        capture_output=True, text=True, check=False,
    )
    if probe.returncode != 0:
        return "", []
    meta = json.loads(probe.stdout or "{}")
    return meta.get("format", {}).get("format_name", "?"), meta.get("streams", [])


def _stream_shape(path: Path, streams: list[dict], stream: int) -> tuple[int, int]:
    """(sample rate, channels) of an audio stream ffprobe found; AudioFileError if unusable."""
    not_audio = AudioFileError(f"{shown(path)}: not an audio file (neither libsndfile nor ffmpeg can read it)")
    if not streams:
        raise not_audio
    if not 0 <= stream < len(streams):
        raise AudioFileError(f"{shown(path)}: has {len(streams)} audio streams, stream {stream} asked for")
    try:
        sample_rate, channels = int(streams[stream]["sample_rate"]), int(streams[stream]["channels"])
    except (KeyError, TypeError, ValueError):
        raise not_audio from None
    if sample_rate <= 0 or channels <= 0:  # ffmpeg guessed a format from bytes that are not one
        raise not_audio
    return sample_rate, channels


def _ffmpeg_pcm(path: Path, stream: int) -> list[str]:
    """The ffmpeg command that decodes one audio stream of path to float32 PCM on stdout."""
    return ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", f"0:a:{stream}",
            "-f", "f32le", "-acodec", "pcm_f32le", "-"]


def _decode_ffmpeg(path: Path, stream: int) -> Decoded:
    container, streams = _ffprobe_audio_streams(path)
    sample_rate, channels = _stream_shape(path, streams, stream)
    run = subprocess.run(
        _ffmpeg_pcm(path, stream), capture_output=True, check=False,
    )
    samples = np.frombuffer(run.stdout, dtype="<f4")
    samples = samples[: len(samples) // channels * channels].reshape(-1, channels).copy()
    problems = [line.strip() for line in run.stderr.decode(errors="replace").splitlines() if line.strip()]
    if not len(samples):
        reason = problems[-1] if problems else "no audio in it"
        raise AudioFileError(f"{path}: ffmpeg could not decode it ({reason})")
    warnings: tuple[str, ...] = ()
    if run.returncode != 0 or problems:
        # a file damaged part-way: keep what decoded, as players do, and say so
        warnings = (f"damaged: ffmpeg reported {len(problems)} decoding errors, "
                    f"{len(samples) / sample_rate:.1f} s decoded (last: {problems[-1] if problems else '?'})",)
    info = AudioInfo(
        path=path,
        format=f"{container} ({streams[stream].get('codec_name', '?')})",
        sample_rate=sample_rate,
        channels=channels,
        n_samples=len(samples),
        decoder="ffmpeg",
        audio_streams=len(streams),
        warnings=warnings,
    )
    return Decoded(samples, info)


SCAN_FRAMES = 1 << 20
"""Frames per piece when `scan` reads a file (8 MiB of stereo float32): bounded memory."""


class _Tally:
    """Counts samples and the problems `_repair` repairs (non-finite samples, clipping), piece
    by piece, and words them."""

    def __init__(self) -> None:
        self.frames = self.non_finite = self.clipped = 0

    def add(self, piece: np.ndarray) -> None:
        self.frames += len(piece)
        finite = np.isfinite(piece)
        self.non_finite += int(piece.size - np.count_nonzero(finite))
        self.clipped += int(np.count_nonzero(np.abs(np.where(finite, piece, 0)) >= 1.0))

    def warnings(self) -> tuple[str, ...]:
        return tuple(text for count, text in (
            (self.non_finite, f"{self.non_finite} NaN/inf samples replaced by silence"),
            (self.clipped, f"{self.clipped} samples at or beyond full scale (clipped)")) if count)


def scan(path: str | os.PathLike[str]) -> AudioInfo:
    """What `decode(path).info` says, read piece by piece: memory stays bounded (SCAN_FRAMES)
    whatever the file's length (`tuiplayer info` on a 3-hour FLAC)."""
    path = Path(path)
    check_audio_file(path)
    tally = _Tally()
    try:
        with sf.SoundFile(path) as f:
            for piece in f.blocks(blocksize=SCAN_FRAMES, dtype="float32", always_2d=True):
                tally.add(piece)
            info = AudioInfo(path=path, format=f"{f.format} ({f.subtype})", sample_rate=f.samplerate,
                             channels=f.channels, n_samples=tally.frames, decoder="libsndfile")
    except (sf.LibsndfileError, RuntimeError, EOFError):
        if not ffmpeg_available():
            raise AudioFileError(f"{shown(path)}: not a format libsndfile reads, and ffmpeg is not installed "
                                 "to try it") from None
        tally = _Tally()
        info = _scan_ffmpeg(path, tally)
    if info.n_samples == 0:
        raise AudioFileError(f"{shown(path)}: holds no audio samples (zero length)")
    return replace(info, warnings=info.warnings + tally.warnings())


def _scan_ffmpeg(path: Path, tally: _Tally) -> AudioInfo:
    """The first audio stream's info through ffmpeg, decoded piece by piece into tally."""
    container, streams = _ffprobe_audio_streams(path)
    sample_rate, channels = _stream_shape(path, streams, 0)
    with subprocess.Popen(_ffmpeg_pcm(path, 0), stdout=subprocess.PIPE, stderr=subprocess.PIPE) as run:
        assert run.stdout is not None and run.stderr is not None
        frame_bytes = 4 * channels
        rest = b""
        while piece := run.stdout.read(SCAN_FRAMES * frame_bytes):
            piece = rest + piece
            whole = len(piece) // frame_bytes * frame_bytes
            tally.add(np.frombuffer(piece[:whole], dtype="<f4").reshape(-1, channels))
            rest = piece[whole:]
        errors = run.stderr.read().decode(errors="replace")
    problems = [line.strip() for line in errors.splitlines() if line.strip()]
    warnings = (f"damaged: ffmpeg reported {len(problems)} decoding errors (last: {problems[-1]})",) if problems else ()
    return AudioInfo(path=path, format=f"{container} ({streams[0].get('codec_name', '?')})", sample_rate=sample_rate,
                     channels=channels, n_samples=tally.frames, decoder="ffmpeg", audio_streams=len(streams),
                     warnings=warnings)


def _repair(decoded: Decoded) -> Decoded:
    """Replace non-finite samples by silence and note clipping, as warnings on the info."""
    tally = _Tally()
    tally.add(decoded.samples)
    warnings = tally.warnings()
    if not warnings:
        return decoded
    samples = decoded.samples
    if tally.non_finite:
        samples = np.where(np.isfinite(samples), samples, np.float32(0.0))
    return Decoded(samples, replace(decoded.info, warnings=decoded.info.warnings + warnings))


def decode(path: str | os.PathLike[str], stream: int = 0) -> Decoded:
    """Decode a file at its own rate and channel count.

    stream: which audio stream of a multi-stream container (MUSDB18 `.stem.mp4`: 0 mixture,
    1 drums, 2 bass, 3 other, 4 vocals); files libsndfile reads have only stream 0.
    Raises AudioFileError with a one-line reason for anything that is not usable audio.
    """
    path = Path(path)
    check_audio_file(path)
    decoded: Decoded | None = None
    if stream == 0:
        try:
            decoded = _decode_libsndfile(path)
        except (sf.LibsndfileError, RuntimeError, EOFError):
            decoded = None
    if decoded is None:
        if not ffmpeg_available():
            raise AudioFileError(
                f"{path}: not a format libsndfile reads, and ffmpeg is not installed to try it"
            )
        decoded = _decode_ffmpeg(path, stream)
    if decoded.info.n_samples == 0:
        raise AudioFileError(f"{path}: holds no audio samples (zero length)")
    return _repair(decoded)


def to_stereo(samples: np.ndarray) -> np.ndarray:
    """Any channel count to stereo. samples: (n, channels) → float32 (n, 2).

    Mono is duplicated; 3–8 channels are downmixed with the usual ITU coefficients for the
    WAV/ffmpeg channel orders (L R C LFE Ls Rs …, LFE dropped); other counts are averaged.
    Rows are normalised so a full-scale input cannot exceed full scale.
    """
    channels = samples.shape[1]
    if channels == 2:
        return np.ascontiguousarray(samples, dtype=np.float32)
    if channels == 1:
        return np.repeat(samples, 2, axis=1).astype(np.float32, copy=False)
    matrix = _DOWNMIX.get(channels)
    if matrix is None:
        matrix = np.full((channels, 2), 1.0 / channels)
    else:
        matrix = matrix / matrix.sum(axis=0, keepdims=True)
    return (samples @ matrix.astype(np.float32)).astype(np.float32, copy=False)


_C = 0.7071
_DOWNMIX: dict[int, np.ndarray] = {
    # columns: (left, right); rows: input channels in WAV / ffmpeg default order
    3: np.array([[1, 0], [0, 1], [_C, _C]]),  # L R C
    4: np.array([[1, 0], [0, 1], [_C, 0], [0, _C]]),  # L R Ls Rs (quad)
    5: np.array([[1, 0], [0, 1], [_C, _C], [_C, 0], [0, _C]]),  # L R C Ls Rs
    6: np.array([[1, 0], [0, 1], [_C, _C], [0, 0], [_C, 0], [0, _C]]),  # 5.1
    8: np.array([[1, 0], [0, 1], [_C, _C], [0, 0], [_C, 0], [0, _C], [_C, 0], [0, _C]]),  # 7.1
}


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample with libsoxr (high quality). samples: (n, channels) → float32 (m, channels)."""
    if from_rate == to_rate:
        return samples
    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def load(path: str | os.PathLike[str], stream: int = 0) -> Audio:
    """Decode a file and convert it to float32 stereo at SIGNAL.sample_rate (n_samples, 2)."""
    decoded = decode(path, stream)
    stereo = to_stereo(decoded.samples)
    samples = resample(stereo, decoded.info.sample_rate, SIGNAL.sample_rate)
    return Audio(np.ascontiguousarray(samples, dtype=np.float32), decoded.info)


def restore(samples: np.ndarray, source: AudioInfo) -> np.ndarray:
    """Back to the source's rate and exact length. samples: (n, 2) at SIGNAL.sample_rate."""
    out = resample(samples, SIGNAL.sample_rate, source.sample_rate)
    if len(out) >= source.n_samples:
        return out[: source.n_samples]
    return np.pad(out, ((0, source.n_samples - len(out)), (0, 0)))


def write_audio(
    path: str | os.PathLike[str],
    samples: np.ndarray,
    sample_rate: int,
    *,
    force: bool = False,
) -> Path:
    """Write samples (n, channels) to path atomically; the format follows the suffix.

    Through `files.atomic_write`: never half-written, never replacing a file without `force`.
    WAV is 32-bit float; FLAC is 24-bit, so samples beyond full scale are clipped there.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in OUTPUT_FORMATS:
        raise AudioFileError(f"{path}: cannot write .{fmt} files (use {', '.join(OUTPUT_FORMATS)})")
    if fmt == "flac":
        samples = np.clip(samples, -1.0, 1.0)
    # encoded in memory first: libsndfile writing through a Python file loses the OSError of a
    # full disk inside its callback; here it reaches the caller as it is
    encoded = io.BytesIO()
    sf.write(encoded, samples, sample_rate, format=fmt.upper(), subtype=OUTPUT_FORMATS[fmt])
    return atomic_write(path, lambda handle: handle.write(encoded.getbuffer()), force=force)
