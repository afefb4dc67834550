"""Audio I/O: decoding (libsndfile and ffmpeg), conversion to 44.1 kHz stereo, atomic writes."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tuiplayer.audio import io
from tuiplayer.config import SIGNAL
from tuiplayer.errors import AudioFileError, OutputExistsError
from tuiplayer.files import _umask

needs_ffmpeg = pytest.mark.skipif(not io.ffmpeg_available(), reason="ffmpeg is not installed")


def test_stereo_44k_wav_loads_unchanged(write_wav: Callable[..., Path]) -> None:
    path = write_wav(seconds=0.5)
    audio = io.load(path)
    expected, _ = sf.read(path, dtype="float32")
    assert audio.samples.dtype == np.float32 and audio.samples.shape == (22050, 2)
    np.testing.assert_array_equal(audio.samples, expected)
    assert audio.source.sample_rate == 44100 and audio.source.channels == 2


def test_mono_is_duplicated(write_wav: Callable[..., Path]) -> None:
    audio = io.load(write_wav(channels=1, seconds=0.2))
    np.testing.assert_array_equal(audio.samples[:, 0], audio.samples[:, 1])


def test_surround_is_downmixed_without_exceeding_full_scale() -> None:
    # 5.1 in WAV order L R C LFE Ls Rs: centre goes to both sides, LFE is dropped
    samples = np.zeros((100, 6), dtype=np.float32)
    samples[:, 2] = 1.0  # centre only
    stereo = io.to_stereo(samples)
    assert stereo.shape == (100, 2)
    np.testing.assert_allclose(stereo[:, 0], stereo[:, 1])
    assert 0 < stereo.max() <= 1.0
    samples[:] = 0.0
    samples[:, 3] = 1.0  # LFE only
    assert np.abs(io.to_stereo(samples)).max() == 0.0
    samples[:] = 1.0  # all channels full scale
    assert io.to_stereo(samples).max() <= 1.0 + 1e-6


def test_any_rate_is_resampled_and_restored_to_the_exact_length(write_wav: Callable[..., Path]) -> None:
    path = write_wav(sample_rate=8000, channels=1, seconds=1.2345)
    audio = io.load(path)
    assert audio.samples.shape[1] == 2
    assert abs(len(audio.samples) - 1.2345 * SIGNAL.sample_rate) <= 2
    # a 440 Hz tone stays a 440 Hz tone
    spectrum = np.abs(np.fft.rfft(audio.samples[:, 0]))
    assert abs(np.argmax(spectrum) * SIGNAL.sample_rate / len(audio.samples) - 440) < 2
    back = io.restore(audio.samples, audio.source)
    assert back.shape == (audio.source.n_samples, 2)
    original, _ = sf.read(path, dtype="float32")
    inner = slice(200, -200)  # the resampler's edges aside
    assert np.max(np.abs(back[inner, 0] - original[inner])) < 1e-2


@pytest.mark.parametrize("fmt,subtype", [("flac", "PCM_16"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")])
def test_compressed_formats_libsndfile_reads(tmp_path: Path, fmt: str, subtype: str) -> None:
    t = np.arange(44100) / 44100
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = tmp_path / f"tone.{fmt}"
    sf.write(path, np.stack([tone, tone], 1), 44100, format=fmt.upper(), subtype=subtype)
    audio = io.load(path)
    assert audio.source.decoder == "libsndfile"
    assert abs(len(audio.samples) - 44100) < 2000  # mp3 adds encoder delay/padding
    assert 0.15 < np.sqrt(np.mean(audio.samples**2)) < 0.25


@needs_ffmpeg
def test_formats_only_ffmpeg_reads(write_wav: Callable[..., Path], tmp_path: Path) -> None:
    source = write_wav(seconds=1.0)
    m4a = tmp_path / "tone.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), "-c:a", "aac", str(m4a)], check=True)
    audio = io.load(m4a)
    assert audio.source.decoder == "ffmpeg" and "aac" in audio.source.format
    assert abs(len(audio.samples) - 44100) < 3000
    assert 0.25 < np.sqrt(np.mean(audio.samples**2)) < 0.45


@needs_ffmpeg
def test_stem_mp4_streams_are_addressable(tmp_path: Path) -> None:
    """A MUSDB-style multi-stream file: stream k is its own signal."""
    rate = 44100
    t = np.arange(rate) / rate
    inputs = []
    for k, freq in enumerate((220, 330, 440, 550, 660)):
        path = tmp_path / f"s{k}.wav"
        sf.write(path, np.stack([np.sin(2 * np.pi * freq * t)] * 2, 1).astype(np.float32) * 0.3, rate)
        inputs += ["-i", str(path)]
    stem_file = tmp_path / "track.stem.mp4"
    maps = [arg for k in range(5) for arg in ("-map", str(k))]
    subprocess.run(["ffmpeg", "-v", "error", *inputs, *maps, "-c:a", "alac", str(stem_file)], check=True)
    for k, freq in enumerate((220, 330, 440, 550, 660)):
        decoded = io.decode(stem_file, stream=k)
        assert decoded.info.audio_streams == 5
        peak = np.argmax(np.abs(np.fft.rfft(decoded.samples[:, 0]))) * rate / len(decoded.samples)
        assert abs(peak - freq) < 2
    with pytest.raises(AudioFileError, match="5 audio streams"):
        io.decode(stem_file, stream=7)


def test_missing_ffmpeg_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "x.m4a"
    path.write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(100))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(AudioFileError, match="ffmpeg is not installed"):
        io.load(path)


def test_non_finite_samples_become_silence_with_a_warning(tmp_path: Path) -> None:
    samples = np.full((1000, 2), 0.1, dtype=np.float32)
    samples[10, 0], samples[20, 1], samples[30, 0] = np.nan, np.inf, -np.inf
    path = tmp_path / "nan.wav"
    sf.write(path, samples, 44100, subtype="FLOAT")
    decoded = io.decode(path)
    assert np.isfinite(decoded.samples).all()
    assert decoded.samples[10, 0] == 0.0 and decoded.samples[11, 0] == np.float32(0.1)
    assert any("3 NaN/inf" in w for w in decoded.info.warnings)


def test_write_is_atomic_and_never_clobbers(tmp_path: Path) -> None:
    target = tmp_path / "out" / "stem.wav"
    samples = np.random.default_rng(0).uniform(-1, 1, (500, 2)).astype(np.float32)
    io.write_audio(target, samples, 44100)
    np.testing.assert_array_equal(sf.read(target, dtype="float32")[0], samples)
    with pytest.raises(OutputExistsError, match="--force"):
        io.write_audio(target, samples * 0, 44100)
    np.testing.assert_array_equal(sf.read(target, dtype="float32")[0], samples)  # untouched
    io.write_audio(target, samples * 0.5, 44100, force=True)
    np.testing.assert_array_equal(sf.read(target, dtype="float32")[0], samples * 0.5)
    assert sorted(p.name for p in target.parent.iterdir()) == ["stem.wav"]  # no temporary left
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()  # not mkstemp's private 0600
    target.chmod(0o640)
    io.write_audio(target, samples, 44100, force=True)
    assert target.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its permissions


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path: Path) -> None:
    target = tmp_path / "mix.wav"
    target.write_bytes(b"precious")
    with pytest.raises(Exception):  # noqa: B017 - soundfile refuses 3-D data
        io.write_audio(target, np.zeros((10, 2, 2), dtype=np.float32), 44100, force=True)
    assert target.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["mix.wav"]


def test_flac_output_is_clipped_and_wav_keeps_floats(tmp_path: Path) -> None:
    loud = np.full((100, 2), 1.5, dtype=np.float32)
    io.write_audio(tmp_path / "a.flac", loud, 44100)
    io.write_audio(tmp_path / "a.wav", loud, 44100)
    assert sf.read(tmp_path / "a.flac")[0].max() <= 1.0
    assert sf.read(tmp_path / "a.wav", dtype="float32")[0].max() == np.float32(1.5)
    with pytest.raises(AudioFileError, match=r"cannot write \.mp3"):
        io.write_audio(tmp_path / "a.mp3", loud, 44100)
