"""`tuiplayer export` and Native Instruments Stems files: what DJ software and stempeg read back."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import run_cli

from tuiplayer import modelstore
from tuiplayer.audio import ni_stems
from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.playback import stretch

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (scripts/setup.sh)")
SR = SIGNAL.sample_rate


def parts(seconds: float = 3.0) -> dict[str, np.ndarray]:
    """Four distinguishable stereo stems: tones an octave and more apart, left ≠ right."""
    t = np.arange(int(seconds * SR)) / SR
    hz = {"vocals": 880.0, "drums": 220.0, "bass": 55.0 * 2, "other": 440.0 * 1.5}
    return {stem: np.stack([0.2 * np.sin(2 * np.pi * f * t), 0.1 * np.sin(2 * np.pi * f * t + 1)], axis=1)
            .astype(np.float32) for stem, f in hz.items()}


def boxes(data: bytes, start: int, stop: int) -> dict[bytes, tuple[int, int]]:
    """The MP4 boxes in data[start:stop] by type (an independent reader: sizes must add up)."""
    found, at = {}, start
    while at < stop:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        assert size >= 8 and at + size <= stop, f"box {kind!r} overruns its parent"
        found[kind] = (at, size)
        at += size
    assert at == stop
    return found


@needs_ffmpeg
def test_an_ni_stems_file_reads_back_in_nis_order_with_its_metadata(tmp_path: Path) -> None:
    stempeg = pytest.importorskip("stempeg")
    stems = parts()
    mix = sum(stems.values())
    path = ni_stems.write_ni_stems(tmp_path / "song.stem.mp4", mix, stems)

    # the streams, as stempeg reads them: mix, drums, bass, other, vocals
    audio, rate = stempeg.read_stems(str(path))
    assert rate == SR and audio.shape[0] == 5 and audio.shape[2] == 2
    expected = [mix, *(stems[name] for name in ni_stems.NI_ORDER)]
    for i, want in enumerate(expected):
        got = audio[i]
        # AAC's priming delay: line the stream up with what was written before comparing
        lag = int(np.argmax(np.correlate(got[: SR // 2, 0], want[:2048, 0], "valid")))
        n = len(want) - 4096
        error = np.sum((got[lag : lag + n] - want[:n]) ** 2) / np.sum(want[:n] ** 2)
        assert 10 * np.log10(error) < -20, f"stream {i}"

    # NI's metadata: moov/udta/stem holds the JSON (read with a reader of our own, box by box)
    data = path.read_bytes()
    top = boxes(data, 0, len(data))
    moov_at, moov_size = top[b"moov"]
    assert top[b"mdat"][0] < moov_at  # (samples before moov: growing it moved none)
    udta_at, udta_size = boxes(data, moov_at + 8, moov_at + moov_size)[b"udta"]
    stem_at, stem_size = boxes(data, udta_at + 8, udta_at + udta_size)[b"stem"]
    meta = json.loads(data[stem_at + 8 : stem_at + stem_size])
    assert [s["name"] for s in meta["stems"]] == ["drums", "bass", "other", "vocals"]
    assert all(s["color"].startswith("#") for s in meta["stems"]) and meta["version"] == 1
    assert top[b"ftyp"][0] == 0 and data[8:12] == b"M4A "

    # only the mix is enabled: players that do not know stems play the mix
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=index:stream_disposition=default",
                            "-of", "json", str(path)], capture_output=True, text=True, check=True)
    defaults = [s["disposition"]["default"] for s in json.loads(probe.stdout)["streams"]]
    assert defaults == [1, 0, 0, 0, 0]


def test_adding_a_box_keeps_every_size_right() -> None:
    """into an existing udta, and into a moov without one"""
    media = struct.pack(">I4s", 12, b"mdat") + b"abcd"
    moov_with = struct.pack(">I4s", 8 + 8 + 9, b"moov") + struct.pack(">I4s", 8 + 9, b"udta") + \
        struct.pack(">I4s", 9, b"meta") + b"x"
    moov_without = struct.pack(">I4s", 8 + 9, b"moov") + struct.pack(">I4s", 9, b"mvhd") + b"y"
    for moov in (moov_with, moov_without):
        data = ni_stems.with_udta_box(media + moov, b"stem", b'{"a": 1}')
        top = boxes(data, 0, len(data))
        at, size = top[b"moov"]
        udta_at, udta_size = boxes(data, at + 8, at + size)[b"udta"]
        stem_at, stem_size = boxes(data, udta_at + 8, udta_at + udta_size)[b"stem"]
        assert data[stem_at + 8 : stem_at + stem_size] == b'{"a": 1}'
        assert data[:12] == media  # the samples did not move
    with pytest.raises(ValueError):  # moov before the samples: adding would move them
        ni_stems.with_udta_box(moov_without + media, b"stem", b"{}")


@pytest.fixture
def with_tiny(tiny_models: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(modelstore.MODELS_ENV, str(tiny_models))
    monkeypatch.setenv("TUIPLAYER_CACHE_DIR", str(tmp_path / "cache"))


@needs_ffmpeg
def test_export_writes_stems_the_remix_and_a_stems_file(
        with_tiny: None, write_wav: Callable[..., Path], tmp_path: Path) -> None:
    song = write_wav(name="Song 1.wav", seconds=2.0)
    result = run_cli("export", song, "-o", tmp_path / "out", "--mute", "vocals", "--gain", "bass=-6")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "out" / "Song 1"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["remix.wav", "Song 1.stem.mp4", *(f"{stem}.wav" for stem in STEMS)])
    stems = {stem: sf.read(folder / f"{stem}.wav", dtype="float32")[0] for stem in STEMS}
    remix = sf.read(folder / "remix.wav", dtype="float32")[0]
    expected = stems["drums"] + 10 ** (-6 / 20) * stems["bass"] + stems["other"]
    np.testing.assert_allclose(remix, expected, atol=1e-4)
    # again: nothing is overwritten without --force, and nothing of it is written
    again = run_cli("export", song, "-o", tmp_path / "out", "--only", "remix", "--tempo", "90")
    assert again.returncode == 0 and (folder / "remix-tempo90.wav").exists()
    clash = run_cli("export", song, "-o", tmp_path / "out")
    assert clash.returncode != 0 and "exists already" in clash.stderr and "Traceback" not in clash.stderr


@pytest.mark.skipif(not stretch.available(), reason="tempo and pitch need pylibrb (the stretch extra)")
def test_export_at_a_tempo_and_pitch(with_tiny: None, write_wav: Callable[..., Path], tmp_path: Path) -> None:
    song = write_wav(name="song.wav", seconds=2.0, sample_rate=22050)
    result = run_cli("export", song, "-o", tmp_path, "--only", "remix", "--tempo", "80", "--pitch", "-2",
                     "--format", "flac")
    assert result.returncode == 0, result.stderr
    remix, rate = sf.read(tmp_path / "song" / "remix-tempo80-pitch-2.flac", dtype="float32")
    assert rate == 22050 and len(remix) == pytest.approx(2.0 * 22050 / 0.8, abs=2)  # the song's rate, longer


@pytest.mark.parametrize(("args", "message"), [
    (["--gain", "bass"], "STEM=DB"),
    (["--gain", "voice=3"], "STEM=DB"),
    (["--gain", "bass=99"], "must be"),
    (["--tempo", "300"], "must be 50–150"),
    (["--pitch", "1.5"], "whole number"),
])
def test_export_options_that_make_no_sense_get_one_line(
        with_tiny: None, write_wav: Callable[..., Path], tmp_path: Path, args: list[str], message: str) -> None:
    song = write_wav(name="song.wav", seconds=1.0)
    result = run_cli("export", song, "-o", tmp_path / "out", *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
