"""`tuiplayer separate`: stems as files at the input's rate and length, never clobbering."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import run_cli

from tuiplayer import modelstore
from tuiplayer.config import STEMS


@pytest.fixture
def with_tiny(tiny_models: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(modelstore.MODELS_ENV, str(tiny_models))
    monkeypatch.setenv("TUIPLAYER_CACHE_DIR", str(tmp_path / "cache"))


def test_a_second_run_comes_from_the_cache(with_tiny: None, write_wav: Callable[..., Path], tmp_path: Path) -> None:
    song = write_wav(name="song.wav", seconds=2.0)
    assert run_cli("separate", song, "-o", tmp_path / "one").returncode == 0
    assert len(list((tmp_path / "cache" / "stems").glob("*.npy"))) == 1
    again = run_cli("separate", song, "-o", tmp_path / "two")
    assert again.returncode == 0 and "(cached)" in again.stderr
    for stem in STEMS:
        one = sf.read(tmp_path / "one" / "song" / f"{stem}.wav", dtype="float32")[0]
        two = sf.read(tmp_path / "two" / "song" / f"{stem}.wav", dtype="float32")[0]
        np.testing.assert_allclose(two, one, atol=1e-3)


def test_stems_keep_rate_and_length_and_sum_to_the_input(
    with_tiny: None, write_wav: Callable[..., Path], tmp_path: Path
) -> None:
    mono = write_wav(name="in dir/Mono Sängerin.wav", seconds=1.5, sample_rate=22050, channels=1)
    stereo = write_wav(name="in dir/deeper/stereo.flac", seconds=2.0)
    out = tmp_path / "stems out"
    result = run_cli("separate", mono.parent, "-o", out, "--format", "flac")
    assert result.returncode == 0, result.stderr
    for song, rate, n in ((mono, 22050, 33075), (stereo, 44100, 88200)):
        folder = out / song.stem
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s}.flac" for s in STEMS)
        stems = [sf.read(folder / f"{s}.flac", dtype="float32") for s in STEMS]
        assert all(rate_ == rate and len(x) == n and x.shape[1] == 2 for x, rate_ in stems)
        original = sf.read(song, dtype="float32", always_2d=True)[0]
        total = sum(x for x, _ in stems)
        inner = slice(500, -500)
        error = np.sum((total[inner] - original[inner]) ** 2) / np.sum(original[inner] ** 2)
        assert 10 * np.log10(error) < -40  # unity remix, through resampling and 24-bit FLAC


def test_existing_stems_are_not_overwritten_without_force(
    with_tiny: None, write_wav: Callable[..., Path], tmp_path: Path
) -> None:
    song = write_wav(name="song.wav", seconds=1.0)
    out = tmp_path / "out"
    assert run_cli("separate", song, "-o", out).returncode == 0
    (out / "song" / "drums.wav").write_bytes(b"my own drums")
    again = run_cli("separate", song, "-o", out)
    assert again.returncode == 2 and "--force" in again.stderr and "Traceback" not in again.stderr
    assert (out / "song" / "drums.wav").read_bytes() == b"my own drums"
    assert run_cli("separate", song, "-o", out, "--force").returncode == 0
    assert sf.info(out / "song" / "drums.wav").frames == 44100
    assert not list(out.rglob("*.part"))


def test_bad_files_are_reported_and_the_rest_separated(
    with_tiny: None, write_wav: Callable[..., Path], tmp_path: Path
) -> None:
    good = write_wav(name="good.wav", seconds=1.0)
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n" * 10)
    result = run_cli("separate", text, tmp_path / "missing.flac", good, "-o", tmp_path / "out")
    assert result.returncode == 2
    assert "notes.wav: not an audio file" in result.stderr and "missing.flac: no such file" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "out" / "good" / "other.wav").is_file()


def test_a_missing_model_is_one_clear_line(with_tiny: None, write_wav: Callable[..., Path], tmp_path: Path) -> None:
    result = run_cli("separate", write_wav(), "-o", tmp_path / "out", "--model", "nonesuch")
    assert result.returncode == 2
    assert result.stderr.strip() == "tuiplayer: no model named 'nonesuch' (installed: tiny)"
