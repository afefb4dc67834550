"""What a hostile but realistic user can do gets one clear line and exit 2, no partial files.

Each case here was once an "internal error", a traceback, a hang or a partial file (issue 14).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from tuiplayer.errors import ModelError, OutputError

ROOT = os.geteuid() == 0


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refused command (its exit status 2 checked)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("tuiplayer:")]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "internal error" not in lines[0] and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@contextlib.contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A small tmpfs mounted at folder (skips the test where mounting is not allowed)."""
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=False).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_files_that_are_not_audio_files(tmp_path: Path):
    text = tmp_path / "text.flac"
    text.write_text("hello, this is not audio at all\n")
    assert "not an audio file" in one_line(run_cli("info", text))
    os.mkfifo(tmp_path / "pipe.wav")
    assert "not a regular file" in one_line(run_cli("info", tmp_path / "pipe.wav"))
    assert "not a regular file" in one_line(run_cli("info", "/dev/zero"))
    assert "file name too long" in one_line(run_cli("info", tmp_path / ("a" * 300 + ".wav")))
    deep = "/tmp/" + "b/" * 2100 + "x.wav"
    line = one_line(run_cli("info", deep))
    assert "file name too long" in line and len(line) < 200


def test_separate_checks_its_input_and_output_before_loading_a_model(tmp_path: Path, write_wav):
    song = write_wav("song.wav", seconds=1.0)
    missing = run_cli("separate", tmp_path / "nope.wav", "-o", tmp_path / "out")
    assert "no such file" in one_line(missing)
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    assert "is a file, not a folder" in one_line(run_cli("separate", song, "-o", a_file))
    (tmp_path / "o2").mkdir()
    (tmp_path / "o2" / "song").write_text("x")  # where the song's folder must go
    assert "is a file, not a folder" in one_line(run_cli("separate", song, "-o", tmp_path / "o2"))


def test_eval_refuses_an_unwritable_json_before_the_work(tmp_path: Path):
    (tmp_path / "data" / "track").mkdir(parents=True)
    target = tmp_path / "report.json"
    target.mkdir()
    assert "is a folder" in one_line(run_cli("eval", tmp_path / "data", "--oracle", "--json", target))


def test_a_broken_models_index_is_one_line(tmp_path: Path, tiny_models: Path):
    root = tmp_path / "models"
    shutil.copytree(tiny_models, root)
    (root / "index.json").write_text("[1, 2]")
    result = subprocess.run([sys.executable, "-m", "tuiplayer", "models"], capture_output=True, text=True,
                            env={**os.environ, "TUIPLAYER_MODELS": str(root)}, check=False)
    assert "not a models index" in one_line(result)


def test_synth_refuses_a_file_as_out_and_more_songs_than_fit(tmp_path: Path):
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    assert "is a file, not a folder" in one_line(run_cli("synth", a_file, "--songs", 1, "--seconds", 5, "--seed", 1))
    huge = run_cli("synth", tmp_path / "big", "--songs", 99999999999, "--seconds", 30, "--seed", 1)
    assert "GB are free there" in one_line(huge)
    assert not (tmp_path / "big").exists()


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--learning-rate", "nan", "--learning-rate must be"),
    ("--learning-rate", "0", "--learning-rate must be"),
    ("--hours", "-1", "--hours must be"),
])
def test_train_refuses_options_that_cannot_train(tmp_path: Path, option: str, value: str, says: str):
    result = run_cli("train", "--data", tmp_path, "--arch", "unet", "--out", tmp_path / "m", option, value)
    assert says in one_line(result)
    assert not (tmp_path / "m").exists()


def test_one_training_step_is_one_step():
    from tuiplayer.nn.train import TrainConfig

    config = TrainConfig(data=("d",), arch="unet", out="o", run_dir="r", steps=1, steps_per_epoch=250)
    assert config.steps_per_epoch == 1 and config.epochs == 1


def test_nan_masks_are_a_model_error_not_stems():
    from tuiplayer.dsp.masks import weighted_stem_spectrograms

    masks = np.full((4, 8, 2, 4), np.nan, dtype=np.float32)
    spec = np.ones((4, 16, 2), dtype=np.complex64)
    with pytest.raises(ModelError, match="not numbers"):
        weighted_stem_spectrograms(spec, masks, np.ones(4, dtype=np.float32), 3)


@pytest.mark.parametrize("damage", ["empty", "list", "truncated"])
def test_a_damaged_cache_entry_is_removed_and_rebuilt(tmp_path: Path, damage: str):
    from tuiplayer.separation.cache import StemCache, cached_or_separated

    cache = StemCache(tmp_path)
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (5000, 2)).astype(np.float32)
    stems = np.repeat(audio[..., None] / 4, 4, axis=-1)
    cached_or_separated(cache, audio, "f" * 64, lambda samples: stems)
    (data,) = cache.root.glob("*.npy")
    meta = data.with_suffix(".json")
    if damage == "empty":
        data.write_bytes(b"")
    elif damage == "list":
        meta.write_text(json.dumps([1, 2, 3]))
    else:
        data.write_bytes(data.read_bytes()[:100])
    calls = []
    again, from_cache, _ = cached_or_separated(cache, audio, "f" * 64, lambda samples: calls.append(1) or stems)
    assert not from_cache and calls == [1]
    np.testing.assert_allclose(again, stems)
    assert cached_or_separated(cache, audio, "f" * 64, lambda samples: 1 / 0)[1]  # rebuilt: cached again


@pytest.mark.skipif(not ROOT or shutil.which("mount") is None, reason="mounting a small tmpfs needs root")
def test_a_full_disk_leaves_no_partial_stems(tmp_path: Path):
    from tuiplayer.audio.io import AudioInfo
    from tuiplayer.separation import export

    with tmpfs(tmp_path / "disk", "size=1m") as disk:
        n = 44100 * 3  # 4 stems of 3 s float32 stereo: ~4 MB, more than the 1 MB disk
        stems = np.zeros((n, 2, 4), dtype=np.float32)
        source = AudioInfo(path=Path("song.wav"), format="WAV", sample_rate=44100, channels=2, n_samples=n,
                           decoder="libsndfile")
        paths = export.stem_paths(disk, Path("song.wav"), "wav")
        with pytest.raises(OutputError, match="no space left"):
            export.write_stems(stems, source, paths, force=False)
        assert list(disk.rglob("*")) == []


@pytest.mark.skipif(not ROOT, reason="a read-only tmpfs needs root")
def test_a_read_only_output_is_refused_up_front(tmp_path: Path):
    from tuiplayer.files import check_writable

    with tmpfs(tmp_path / "ro", "size=1m,ro") as disk, pytest.raises(OutputError, match="read-only file system"):
        check_writable(disk / "song" / "vocals.wav")
