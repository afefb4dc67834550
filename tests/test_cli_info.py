"""`tuiplayer info` on good and bad input: correct facts, or one clear line and exit 2."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import run_cli

from tuiplayer.audio.io import ffmpeg_available


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("tuiplayer: ")
    for word in words:
        assert word in lines[0]


def test_info_reports_format_rate_channels_duration(write_wav: Callable[..., Path]) -> None:
    path = write_wav(seconds=2.5, subtype="PCM_16")
    result = run_cli("info", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: WAV (PCM_16), 44100 Hz, 2 channels, 0:02.500 (110250 samples)"


def test_missing_path(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("info", tmp_path / "nope.flac"), "no such file")


def test_directory(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("info", tmp_path), "is a directory")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    assert_one_line_error(run_cli("info", tmp_path / "empty.wav"), "empty")


def test_text_file_named_wav(tmp_path: Path) -> None:
    (tmp_path / "notes.wav").write_text("these are my lyrics, not audio\n" * 20)
    assert_one_line_error(run_cli("info", tmp_path / "notes.wav"), "not an audio file")


def test_truncated_wav_plays_what_is_there(write_wav: Callable[..., Path]) -> None:
    path = write_wav(seconds=1.0, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    result = run_cli("info", path)
    assert result.returncode == 0, result.stderr
    assert "44100 Hz, 2 channels" in result.stdout
    assert "(22044 samples)" in result.stdout  # the half that survives


def test_wav_cut_inside_its_header(write_wav: Callable[..., Path]) -> None:
    path = write_wav(seconds=1.0)
    path.write_bytes(path.read_bytes()[:30])
    assert_one_line_error(run_cli("info", path))


def test_zero_length_audio(tmp_path: Path) -> None:
    sf.write(tmp_path / "zero.wav", np.zeros((0, 2)), 44100)
    assert_one_line_error(run_cli("info", tmp_path / "zero.wav"), "no audio samples")


def test_8khz_mono(write_wav: Callable[..., Path]) -> None:
    path = write_wav(sample_rate=8000, channels=1, seconds=3.0, subtype="PCM_16")
    result = run_cli("info", path)
    assert result.returncode == 0, result.stderr
    assert "8000 Hz, 1 channel, 0:03.000 (24000 samples)" in result.stdout


def test_96khz_six_channels(write_wav: Callable[..., Path]) -> None:
    path = write_wav(sample_rate=96000, channels=6, seconds=0.5, subtype="PCM_24")
    result = run_cli("info", path)
    assert result.returncode == 0, result.stderr
    assert "96000 Hz, 6 channels, 0:00.500 (48000 samples)" in result.stdout


def test_nan_and_inf_samples_are_reported(tmp_path: Path) -> None:
    samples = np.full((4410, 2), 0.25, dtype=np.float32)
    samples[100:110] = np.nan
    samples[200, 1] = np.inf
    sf.write(tmp_path / "broken.wav", samples, 44100, subtype="FLOAT")
    result = run_cli("info", tmp_path / "broken.wav")
    assert result.returncode == 0, result.stderr
    assert "warning: 21 NaN/inf samples replaced by silence" in result.stdout


def test_clipped_audio_is_reported(tmp_path: Path) -> None:
    t = np.arange(44100) / 44100
    loud = np.clip(3 * np.sin(2 * np.pi * 100 * t), -1, 1).astype(np.float32)
    sf.write(tmp_path / "loud.flac", np.stack([loud, loud], 1), 44100, subtype="PCM_16")
    result = run_cli("info", tmp_path / "loud.flac")
    assert result.returncode == 0, result.stderr
    assert "FLAC (PCM_16)" in result.stdout and "clipped" in result.stdout


def test_path_with_spaces_and_non_ascii(tmp_path: Path, write_wav: Callable[..., Path]) -> None:
    folder = tmp_path / "Björk – Jóga (live)"
    folder.mkdir()
    path = write_wav(name="Björk – Jóga (live)/01 Jóga ünïcødé.wav", seconds=1.0)
    result = run_cli("info", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: WAV")


@pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg is not installed")
def test_m4a_through_ffmpeg(write_wav: Callable[..., Path], tmp_path: Path) -> None:
    m4a = tmp_path / "song.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(write_wav()), "-c:a", "aac", str(m4a)], check=True)
    result = run_cli("info", m4a)
    assert result.returncode == 0, result.stderr
    assert "(aac), 44100 Hz, 2 channels" in result.stdout


def test_good_and_bad_files_together(write_wav: Callable[..., Path], tmp_path: Path) -> None:
    """Every file is reported; the exit code says something went wrong."""
    good = write_wav()
    result = run_cli("info", good, tmp_path / "missing.wav")
    assert result.returncode == 2
    assert result.stdout.startswith(f"{good}: WAV")
    assert_one_line_error(result, "missing.wav")


def test_python_dash_m_is_the_same_program() -> None:
    result = run_cli("--help")
    assert result.returncode == 0 and "info" in result.stdout and "bench" in result.stdout


@pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg is not installed")
def test_a_file_damaged_half_way_plays_its_first_half_with_a_warning(tmp_path: Path) -> None:
    song = tmp_path / "song.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=10", "-ac", "2",
                    "-c:a", "aac", "-movflags", "+faststart", str(song)], check=True)
    data = song.read_bytes()
    song.write_bytes(data[: len(data) // 2])
    result = run_cli("info", song)
    assert result.returncode == 0, result.stderr
    assert "(aac), 44100 Hz, 2 channels, 0:04." in result.stdout
    assert "warning: damaged: ffmpeg reported" in result.stdout
