"""Real recordings as partially labelled training material (tuiplayer.data.real, issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.test_dataset import FAST, RATE, store_of, tone
from tuiplayer.config import STEMS
from tuiplayer.data.augment import AugmentConfig
from tuiplayer.data.examples import ExampleMaker, example_rng
from tuiplayer.data.labels import FULL_LABELS, labels
from tuiplayer.data.real import (
    ROLES,
    RealMix,
    RealSources,
    Source,
    alignment_ms,
    check,
    check_examples,
    prepare,
)
from tuiplayer.dsp.stft import Stft
from tuiplayer.errors import BadInput


def fake_packages(root: Path) -> tuple[Source, ...]:
    """A game soundtrack (two pieces), a Frets on Fire song (guitar + the rest) and a drum loop,
    laid out as the Debian packages lay them out, at 48 kHz like some of them."""
    music, fof, loops = root / "games/music", root / "fof/songs/band/first", root / "sonic-pi/samples"
    for folder in (music, fof, loops):
        folder.mkdir(parents=True)
    sf.write(music / "battle.ogg", tone(330.0, 8.0, 48000), 48000)
    sf.write(music / "calm.ogg", tone(660.0, 6.0, 48000), 48000)
    drums, guitar = band_tracks(7.2)
    sf.write(fof / "guitar.ogg", guitar[: 7 * RATE], RATE)
    sf.write(fof / "song.ogg", drums, RATE)
    sf.write(loops / "loop_breakbeat.flac", tone(2000.0, 1.5), RATE)
    sf.write(loops / "loop_drone_g_97.flac", tone(100.0, 1.5), RATE)  # (not drums: left out)
    return (Source("game-music", f"{music}/*.ogg", "instrumental", "GPL-2+"),
            Source("fof-songs", f"{root}/fof/songs/*/*/guitar.ogg", "guitar", "CC-BY-SA-3.0"),
            Source("fof-songs", f"{root}/fof/songs/*/*/guitar.ogg", "band", "CC-BY-SA-3.0"),
            Source("sonic-pi", f"{loops}/loop_*.flac", "drums", "CC0-1.0"),
            Source("not-installed", f"{root}/nothing/*.ogg", "instrumental", "?"))


def test_prepare_decodes_each_role_with_its_provenance(tmp_path: Path) -> None:
    index = prepare(tmp_path / "real", fake_packages(tmp_path / "usr"), log=lambda _: None)
    by_role = {role: [e for e in index["sources"] if e["role"] == role] for role in ROLES}
    assert [len(by_role[role]) for role in ROLES] == [2, 1, 1, 1]
    assert index["missing_packages"] == ["not-installed"]
    battle = next(e for e in by_role["instrumental"] if "battle" in e["file"])
    assert battle["licence"] == "GPL-2+" and battle["sources"][0].endswith("battle.ogg")
    assert battle["seconds"] == pytest.approx(8.0, abs=0.01)  # resampled to 44.1 kHz
    info = sf.info(str(tmp_path / "real" / battle["file"]))
    assert info.samplerate == RATE and info.channels == 2 and info.subtype == "PCM_16"
    band = by_role["band"][0]
    assert band["seconds"] == pytest.approx(7.0, abs=0.01)  # guitar and the rest cut to the shorter
    assert band["lengths_s"] == pytest.approx([7.0, 7.2], abs=0.01)
    assert set(band["rms_db"]) == {"guitar", "rest"}
    assert index["seconds"]["drums"] == pytest.approx(1.5)
    assert json.loads((tmp_path / "real" / "sources.json").read_text()) == index
    with pytest.raises(BadInput, match="exists already"):  # never over files written before
        prepare(tmp_path / "real", fake_packages(tmp_path / "usr2"), log=lambda _: None)


def magnitude(audio: np.ndarray) -> np.ndarray:
    return np.abs(Stft(planner_effort="FFTW_ESTIMATE").forward(audio)[2:194, :1024])


@pytest.mark.parametrize("role", ROLES)
def test_each_role_makes_examples_labelled_with_what_it_knows(tmp_path: Path, role: str) -> None:
    prepare(tmp_path / "real", fake_packages(tmp_path / "usr"), log=lambda _: None)
    only = RealMix(**{r: float(r == role) for r in ROLES})
    sources = RealSources(tmp_path / "real", only)
    maker = ExampleMaker(store_of(2), AugmentConfig(p_remix=0.0), FAST, real=sources, real_share=1.0)
    for index in range(3):
        mixture, targets, table = maker.example(seed=1, index=index)
        parts, again = sources.excerpt(maker, example_rng(1, index).spawn(1)[0])  # (another draw)
        assert parts.shape == (len(STEMS), FAST.excerpt_samples, 2)
        np.testing.assert_array_equal(again, table)  # one role, one kind of labels
        if role in ("guitar", "drums"):
            np.testing.assert_array_equal(table, FULL_LABELS)  # every stem still known
        elif role == "instrumental":
            np.testing.assert_array_equal(table, labels((["vocals"], False), (["drums", "bass", "other"], False)))
        else:
            np.testing.assert_array_equal(table, labels((["other"], True)))
        assert np.all(targets.sum(-1) >= mixture - 1e-3)  # mixture = Σ parts (triangle inequality per bin)


def test_an_instrumental_example_is_a_voice_over_the_recording(tmp_path: Path) -> None:
    """The second part is the real recording (its tone, 330 or 660 Hz), the first a multitrack
    song's vocals; nothing else sounds, and the mixture is their sum."""
    prepare(tmp_path / "real", fake_packages(tmp_path / "usr"), log=lambda _: None)
    sources = RealSources(tmp_path / "real", RealMix(instrumental=1, guitar=0, drums=0, band=0))
    maker = ExampleMaker(store_of(2), AugmentConfig.off(), FAST, real=sources, real_share=1.0)
    parts, _ = sources.excerpt(maker, np.random.default_rng(4))
    assert not parts[2:].any()
    strongest = np.argmax(magnitude(parts[1]).sum(axis=(0, 2))) * RATE / 4096
    assert min(abs(strongest - 330), abs(strongest - 660)) < 11
    voice_db = 20 * np.log10(np.sqrt(np.mean(parts[0] ** 2)) / np.sqrt(np.mean(parts[1] ** 2)))
    assert -6.01 <= voice_db <= 3.01


def test_real_sources_need_a_prepared_folder(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="tuiplayer sources"):
        RealSources(tmp_path)
    prepare(tmp_path / "real", fake_packages(tmp_path / "usr")[:1], log=lambda _: None)
    with pytest.raises(BadInput, match="no real recordings"):
        RealSources(tmp_path / "real", RealMix(instrumental=0))


def band_tracks(seconds: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two tracks of one band, (n, 2) each: clicks (a drum) and a plucked tone on the same
    irregular beats."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    beats = np.cumsum(rng.uniform(0.2, 0.7, int(seconds * 3)))
    drums, guitar = np.zeros((n, 2), np.float32), np.zeros((n, 2), np.float32)
    pluck = (np.sin(2 * np.pi * 196 * np.arange(8000) / RATE) * np.exp(-np.arange(8000) / 2000)).astype(np.float32)
    for beat in beats[beats < seconds - 0.5]:
        at = int(beat * RATE)
        drums[at : at + 200] += 0.3 * rng.standard_normal((200, 2)).astype(np.float32)
        guitar[at : at + 8000] += 0.5 * pluck[:, None]
    return drums, guitar


def test_alignment_finds_how_late_one_track_is() -> None:
    """The second of two tracks of one band 120 ms late is measured as such, on time as 0."""
    drums, guitar = band_tracks(20.0)
    late = np.roll(guitar, int(0.12 * RATE), axis=0)
    lag, clarity = alignment_ms(drums, late)
    assert lag == pytest.approx(120, abs=10) and clarity > 3
    assert alignment_ms(drums, guitar)[0] == pytest.approx(0, abs=10)


def test_check_reports_levels_and_the_bands_alignment(tmp_path: Path) -> None:
    prepare(tmp_path / "real", fake_packages(tmp_path / "usr"), log=lambda _: None)
    report = check(tmp_path / "real")
    assert report["levels_db"]["instrumental"]["n"] == 2
    assert report["levels_db"]["instrumental"]["median"] == pytest.approx(20 * np.log10(0.25 / np.sqrt(2)), abs=0.1)
    (band,) = report["bands"]
    assert band["guitar_late_ms"] == pytest.approx(0, abs=10) and band["used"]
    assert band["guitar_over_rest_db"] > 0  # (the plucks are louder than the clicks)


def test_silent_recordings_and_bands_out_of_step_are_left_out(tmp_path: Path) -> None:
    root = tmp_path / "usr"
    packages = fake_packages(root)
    sf.write(root / "games/music/silence.ogg", np.zeros((RATE, 2), np.float32), RATE)
    drums, guitar = band_tracks(7.0, seed=1)
    (root / "fof/songs/band/second").mkdir(parents=True)
    sf.write(root / "fof/songs/band/second/guitar.ogg", np.roll(guitar, int(0.2 * RATE), axis=0), RATE)
    sf.write(root / "fof/songs/band/second/song.ogg", drums, RATE)
    prepare(tmp_path / "real", packages, log=lambda _: None)
    sources = RealSources(tmp_path / "real")
    assert sorted(Path(f).name for f in sources.left_out) == ["band-second", "music-silence.wav"]
    assert len(sources.files["band"]) == 1 and len(sources.files["instrumental"]) == 2


def test_check_examples_levels_and_the_sum(tmp_path: Path) -> None:
    prepare(tmp_path / "real", fake_packages(tmp_path / "usr"), log=lambda _: None)
    report = check_examples(tmp_path / "real", store_of(2), n=4)
    assert set(report) == set(ROLES)
    for role in ROLES:
        assert report[role]["mixture_minus_sum_max"] < 1e-2  # the mixture is the sum of the parts
    low, _, high = report["instrumental"]["real_over_rest_db"]  # the voice is U(-6, 3) dB over it
    assert -3.5 <= low <= high <= 6.5
