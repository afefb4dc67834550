"""Tests of the synthetic song generator (tuiplayer.synth).

They need the Debian packages fluidsynth, fluid-soundfont-gm, timgm6mb-soundfont, espeak-ng and
hydrogen-drumkits; without them the tests that render audio are skipped. Songs are short (5–6 s)
so the fast tests stay fast; longer checks are marked slow.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tuiplayer.config import STEMS
from tuiplayer.errors import BadInput, OutputExistsError
from tuiplayer.synth import generate
from tuiplayer.synth import resources as resources_module
from tuiplayer.synth.arrangement import arrange
from tuiplayer.synth.drumkits import piece_of
from tuiplayer.synth.generate import plan_songs, render_to_folder
from tuiplayer.synth.production import GUITARS
from tuiplayer.synth.resources import Resources, find_resources
from tuiplayer.synth.score import Phrase, Singer, SungNote, TimeGrid
from tuiplayer.synth.styles import ACOUSTIC_KIT_GENRES, GENRES
from tuiplayer.synth.theory import Key, parse_roman

SEED = 11
SECONDS = 5.0
FILES = (*STEMS, "mixture")
REST_DB = -50.0
REST_GUARD_S = 2.0  # reverb and release tails of the section before a rest are allowed to fade


def _db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2) + 1e-30))


def _read(folder: Path) -> dict[str, np.ndarray]:
    return {name: sf.read(folder / f"{name}.wav", dtype="float32")[0] for name in FILES}


@pytest.fixture(scope="module")
def resources() -> Resources:
    try:
        return find_resources()
    except BadInput as error:
        pytest.skip(f"synth resources missing: {error}")


@pytest.fixture(scope="module")
def songs(resources: Resources, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("synth")
    calls: list[tuple[int, int]] = []
    folders = generate(out, songs=2, seconds=SECONDS, seed=SEED, jobs=1, progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, 2) and calls[-1] == (2, 2)
    return folders


# ---------------------------------------------------------------- layout and the exact mixture


def test_layout_is_musdb(songs: list[Path]) -> None:
    assert len(songs) == 2
    for folder in songs:
        assert folder.name.startswith(f"synth-{SEED}-")
        for name in FILES:
            info = sf.info(folder / f"{name}.wav")
            assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "FLOAT")
            assert info.frames == round(SECONDS * 44100)
        doc = json.loads((folder / "song.json").read_text())
        assert doc["name"] == folder.name and doc["genre"] in GENRES
        assert 70 <= doc["tempo_bpm"] <= 180


def test_mixture_is_exactly_the_sum_of_the_stems(songs: list[Path]) -> None:
    for folder in songs:
        audio = _read(folder)
        total = np.zeros_like(audio["mixture"])
        for stem in STEMS:
            total += audio[stem]
        assert np.array_equal(total, audio["mixture"])


def test_no_clipping(songs: list[Path]) -> None:
    for folder in songs:
        audio = _read(folder)
        peak = float(np.max(np.abs(audio["mixture"])))
        assert 0.3 < peak <= 0.98
        for stem in STEMS:
            assert np.all(np.isfinite(audio[stem]))
            assert float(np.max(np.abs(audio[stem]))) < 1.0


def test_every_stem_sounds_where_song_json_says_it_plays(songs: list[Path]) -> None:
    for folder in songs:
        audio = _read(folder)
        doc = json.loads((folder / "song.json").read_text())
        for stem in STEMS:
            assert _db(audio[stem]) > -45.0, f"{folder.name}: {stem} is (nearly) silent"
            playing = [s for s in doc["sections"] if stem in s["stems"]]
            assert playing, f"{folder.name}: {stem} plays nowhere"
            loudest = max(_db(audio[stem][int(s["start_s"] * 44100):int(s["end_s"] * 44100)]) for s in playing)
            assert loudest > -40.0


def test_sections_cover_the_song(songs: list[Path]) -> None:
    for folder in songs:
        doc = json.loads((folder / "song.json").read_text())
        sections = doc["sections"]
        assert sections[0]["start_s"] == 0.0 and sections[-1]["end_s"] == SECONDS
        for a, b in itertools.pairwise(sections):
            assert a["end_s"] == b["start_s"] and a["end_s"] > a["start_s"]
        for s in sections:
            assert set(s["stems"]) <= set(STEMS) and s["chords"]


# ---------------------------------------------------------------- determinism, overwrite, errors


def test_same_seed_same_bytes_whatever_the_jobs(songs: list[Path], tmp_path: Path) -> None:
    again = generate(tmp_path, songs=2, seconds=SECONDS, seed=SEED, jobs=2)
    assert [f.name for f in again] == [f.name for f in songs]
    for a, b in zip(songs, again, strict=True):
        for name in [*(f"{n}.wav" for n in FILES), "song.json"]:
            assert (a / name).read_bytes() == (b / name).read_bytes(), f"{a.name}/{name} differs"


def test_other_seed_other_song(resources: Resources) -> None:
    a = plan_songs(3, SECONDS, SEED, resources)
    b = plan_songs(3, SECONDS, SEED + 1, resources)
    assert [s.name for s in a] != [s.name for s in b] or [s.tempo_bpm for s in a] != [s.tempo_bpm for s in b]


def test_overwrite_refused_without_force(songs: list[Path]) -> None:
    out = songs[0].parent
    before = (songs[0] / "vocals.wav").stat().st_mtime_ns
    started = time.monotonic()
    with pytest.raises(OutputExistsError, match="exists already"):
        generate(out, songs=2, seconds=SECONDS, seed=SEED, jobs=1)
    assert time.monotonic() - started < 5  # refused before rendering anything
    assert (songs[0] / "vocals.wav").stat().st_mtime_ns == before


def test_force_overwrites(resources: Resources, tmp_path: Path) -> None:
    first = generate(tmp_path, songs=1, seconds=3.0, seed=5, jobs=1)
    data = (first[0] / "mixture.wav").read_bytes()
    second = generate(tmp_path, songs=1, seconds=3.0, seed=5, jobs=1, force=True)
    assert second == first and (second[0] / "mixture.wav").read_bytes() == data


def test_missing_soundfont_is_bad_input(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.sf2"
    with pytest.raises(BadInput, match=r"nowhere\.sf2: soundfont not found"):
        generate(tmp_path / "out", songs=1, seconds=3.0, seed=1, soundfonts=[missing])
    assert not (tmp_path / "out").exists()


def test_missing_default_soundfont_names_the_debian_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tuiplayer.synth import resources as res

    monkeypatch.setattr(res, "DEFAULT_SOUNDFONTS", ((tmp_path / "FluidR3_GM.sf2", "fluid-soundfont-gm"),))
    with pytest.raises(BadInput, match="install the Debian package fluid-soundfont-gm"):
        generate(tmp_path / "out", songs=1, seconds=3.0, seed=1)


def test_not_a_soundfont_is_bad_input(tmp_path: Path) -> None:
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"not a soundfont at all")
    with pytest.raises(BadInput, match="not a SoundFont"):
        generate(tmp_path / "out", songs=1, seconds=3.0, seed=1, soundfonts=[fake])


def test_missing_espeak_is_bad_input(resources: Resources, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "espeak-ng" else real_which(name))
    with pytest.raises(BadInput, match="install the Debian package espeak-ng"):
        generate(tmp_path, songs=1, seconds=3.0, seed=1)


def test_missing_fluidsynth_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    from tuiplayer.synth import fluid

    def no_library(name: str, *args: object, **kwargs: object) -> None:
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_library)
    with pytest.raises(BadInput, match="install the Debian package fluidsynth"):
        fluid.load_library()


@pytest.mark.parametrize("kwargs", [{"songs": 0}, {"seconds": 0.5}, {"seed": -1}, {"jobs": 0}, {"recipe": 4}])
def test_bad_arguments(kwargs: dict[str, float], tmp_path: Path) -> None:
    args = {"songs": 1, "seconds": 3.0, "seed": 1} | kwargs
    with pytest.raises(BadInput):
        generate(tmp_path, **args)


# ---------------------------------------------------------------- production recipes


def test_recipe_2_drives_guitars_and_basses_recipe_1_never(resources: Resources, tmp_path: Path) -> None:
    """The same rock song under both recipes: the same score and instruments; recipe 2 puts a
    guitar through an amp and drives the bass, with different "other" and bass audio to show for it."""
    rendered = {}
    for seed in range(1, 60):
        for song in plan_songs(3, SECONDS, seed, resources):
            guitars = [p for p in song.parts if p.stem == "other" and p.program in GUITARS]
            if song.genre != "rock" or not guitars:
                continue
            docs = {recipe: json.loads((render_to_folder(song, resources, tmp_path / str(recipe), False, recipe)
                                        / "song.json").read_text()) for recipe in (1, 2)}
            amped = [k for k, notes in docs[2]["production"]["effects"].items() if any("amp" in n for n in notes)]
            driven = any(n.startswith("drive") for n in docs[2]["production"]["effects"]["bass"])
            if amped and driven:
                rendered = {recipe: _read(tmp_path / str(recipe) / song.name) for recipe in (1, 2)}
                break
        if rendered:
            break
    assert rendered, "no rock song with an amped guitar and a driven bass under recipe 2"
    assert [d["production"]["recipe"] for d in docs.values()] == [1, 2]
    assert docs[1]["stems"] == docs[2]["stems"] and docs[1]["production"]["sources"] == docs[2]["production"]["sources"]
    one = docs[1]["production"]["effects"]
    assert not any(n.startswith(("amp", "drive", "ladder")) for notes in one.values() for n in notes)
    for stem in ("other", "bass"):
        assert _db(rendered[2][stem] - rendered[1][stem]) > _db(rendered[1][stem]) - 20, f"{stem} sounds the same"
    assert float(np.max(np.abs(rendered[2]["mixture"] - sum(rendered[2][stem] for stem in STEMS)))) < 1e-6


def test_recipe_3_plays_some_acoustic_kits_on_the_recorded_avl_kits(tmp_path: Path) -> None:
    """Recipe 3: a pop/rock/… song may play its kit on one of the AVL kits (recorded acoustic
    kits as SoundFonts): the same score, the kit named in song.json, drums that sound different
    from recipe 2's, and the mixture still the sum of the stems."""
    resources = find_resources(avl_kits=True)
    for seed in range(1, 40):
        song = plan_songs(1, SECONDS, seed, resources)[0]
        if song.genre not in ACOUSTIC_KIT_GENRES:
            continue
        folder = render_to_folder(song, resources, tmp_path / "3", False, 3)
        doc = json.loads((folder / "song.json").read_text())
        if doc["production"]["sources"]["drums_kit"].startswith("avl "):
            break
    else:
        raise AssertionError("no song of an acoustic-kit genre played on an AVL kit")
    two = json.loads((render_to_folder(song, resources, tmp_path / "2", False, 2) / "song.json").read_text())
    assert doc["stems"] == two["stems"] and not two["production"]["sources"]["drums_kit"].startswith("avl ")
    three, other = _read(folder), _read(tmp_path / "2" / song.name)
    assert _db(three["drums"]) > -40 and _db(three["drums"] - other["drums"]) > _db(other["drums"]) - 10
    assert float(np.max(np.abs(three["mixture"] - sum(three[stem] for stem in STEMS)))) < 1e-6


def test_recipe_3_without_the_avl_kits_names_the_package(monkeypatch) -> None:
    monkeypatch.setattr(resources_module, "AVL_KITS", ((Path("/nonexistent/kit.sf2"), "avldrums.lv2-soundfont"),))
    with pytest.raises(BadInput, match=r"install the Debian package avldrums\.lv2-soundfont.*--recipe 2"):
        find_resources(avl_kits=True)


# ---------------------------------------------------------------- rests are silent


def test_stem_silent_before_it_enters(resources: Resources, tmp_path: Path) -> None:
    """A stem that rests in the first section is silent there (no tail can reach it)."""
    checked = 0
    for seed in range(1, 40):
        for song in plan_songs(2, 6.0, seed, resources):
            first = song.sections[0]
            resting = [s for s in STEMS if s not in first.stems]
            if not resting or first.end_s - first.start_s < 1.5 or "vocals" not in resting:
                continue
            folder = render_to_folder(song, resources, tmp_path, force=False)
            audio = _read(folder)
            for stem in resting:
                rest = audio[stem][: int((first.end_s - 0.1) * 44100)]
                assert _db(rest) < REST_DB, f"{song.name}: {stem} not silent in its {first.name}"
                checked += 1
            if checked >= 3:
                return
    assert checked, "no song with a silent first section found"


@pytest.mark.slow
def test_rest_sections_are_silent(resources: Resources, tmp_path: Path) -> None:
    folders = generate(tmp_path, songs=4, seconds=14.0, seed=23)
    checked = 0
    for folder in folders:
        audio = _read(folder)
        doc = json.loads((folder / "song.json").read_text())
        for section in doc["sections"]:
            for stem in STEMS:
                if stem in section["stems"]:
                    continue
                a, b = section["start_s"] + REST_GUARD_S, section["end_s"] - 0.1
                if b - a < 0.5:
                    continue
                segment = audio[stem][int(a * 44100):int(b * 44100)]
                assert _db(segment) < REST_DB, f"{folder.name}: {stem} sounds in {section['name']} at {a:.1f}s"
                checked += 1
    assert checked > 0


# ---------------------------------------------------------------- music and voices


def test_vocal_pitch_follows_the_notes(resources: Resources) -> None:
    import pyworld
    import soxr

    from tuiplayer.synth.vocals import WordBank, sing_phrase

    singer = Singer(voice="en-us+f3", language="en", gender="female", style="sung", formant_shift=1.0,
                    vibrato_hz=5.5, vibrato_st=0.3, scoop_st=0.5, glide_s=0.06, tightness_s=0.0, breathiness=0.1)
    pitches = (64, 67, 71, 69)
    notes = tuple(SungNote(0.2 + 0.6 * i, 0.75 + 0.6 * i, p, w, 0.9)
                  for i, (p, w) in enumerate(zip(pitches, ("love", "is", "all", "we"), strict=True)))
    start, y = sing_phrase(Phrase(notes), singer, WordBank(resources.espeak, singer.voice), np.random.default_rng(0))
    assert abs(start - 0.2 * 44100) < 0.1 * 44100
    audio = np.zeros(int(3.0 * 44100))
    audio[start:start + len(y)] = y[: len(audio) - start]
    assert _db(audio) > -40
    x = soxr.resample(audio, 44100, 16000)
    f0, t = pyworld.dio(x, 16000, f0_floor=70, f0_ceil=900, frame_period=10)
    f0 = pyworld.stonemask(x, f0, t, 16000)
    for note in notes:
        sel = (t > note.start_s + 0.15) & (t < note.end_s - 0.05) & (f0 > 0)
        assert sel.sum() >= 3, f"{note.word}: unvoiced"
        cents = 1200 * np.log2(np.median(f0[sel]) / (440 * 2 ** ((note.pitch - 69) / 12)))
        assert abs(cents) < 40, f"{note.word}: sung {cents:+.0f} cents off"


def test_catalogue_is_varied(resources: Resources) -> None:
    plan = plan_songs(60, 30.0, 2024, resources)
    assert len({s.genre for s in plan}) >= 7
    tempos = [s.tempo_bpm for s in plan]
    assert min(tempos) >= 70 and max(tempos) <= 180 and max(tempos) - min(tempos) > 60
    assert {s.key.split()[1] for s in plan} >= {"major", "minor"}
    assert {s.feel for s in plan} >= {"straight", "shuffle", "swing16", "halftime"}
    sources = {d.source for s in plan for d in s.drums}
    assert sources == {"gm", "hydrogen"}
    assert len({d.kit for s in plan for d in s.drums}) >= 10
    programs = {p.program for s in plan for p in s.parts if p.stem == "bass"}
    assert programs <= set(range(32, 40)) and len(programs) >= 5
    assert len({s.vocals.singer.voice for s in plan}) >= 20
    assert {s.vocals.singer.gender for s in plan} == {"male", "female"}
    names = {sec.name for s in plan for sec in s.sections}
    assert {"intro", "verse", "chorus", "bridge", "outro"} <= names
    # instrumental passages: some sections where the singer rests while the band plays
    assert any("vocals" not in sec.stems and "other" in sec.stems for s in plan for sec in s.sections)
    for song in plan:
        assert 1 <= len([p for p in song.parts if p.stem == "other"]) <= 3
        assert song.vocals.lead, f"{song.name} has no vocals"


def test_fills_at_section_ends(resources: Resources) -> None:
    plan = plan_songs(20, 30.0, 77, resources)
    toms = 0
    for song in plan:
        for section in song.sections[:-1]:
            tail = [h for d in song.drums for h in d.hits if section.end_s - 1.0 <= h.time_s < section.end_s]
            toms += any(h.piece.startswith("tom") for h in tail)
    assert toms >= 5


def test_time_grid_swing() -> None:
    straight = TimeGrid(120.0)
    assert straight.seconds(1.5) == pytest.approx(0.75)
    swung = TimeGrid(120.0, swing=2 / 3, swing_unit=0.5)
    assert swung.seconds(1.0) == pytest.approx(0.5)
    assert swung.seconds(0.5) == pytest.approx(1 / 3 * 0.5 * 2)  # the off-beat at the triplet
    assert swung.seconds(4.0) == pytest.approx(2.0)


def test_roman_numerals() -> None:
    c = Key(0, "major")
    assert parse_roman("I", c).pitch_classes == (0, 4, 7)
    assert parse_roman("vi", c).pitch_classes == (9, 0, 4)
    assert parse_roman("bVII", c).pitch_classes == (10, 2, 5)
    assert parse_roman("V7", Key(9, "minor")).pitch_classes == (4, 8, 11, 2)
    with pytest.raises(ValueError):
        parse_roman("X", c)


def test_arrangement_fills_the_song() -> None:
    rng = np.random.default_rng(3)
    arr = arrange(rng, GENRES["pop"], Key(2, "major"), 100.0, 4, 30.0, ("comp", "lead"), ending=True)
    bar_s = 4 * 60 / arr.tempo_bpm
    ring_s = 30.0 - (arr.total_bars - 1) * bar_s  # the final chord rings for the rest of the song
    assert 1.2 - 1e-6 <= ring_s <= 2.6 + 1e-6
    assert arr.sections[-1].final and any(s.vocals for s in arr.sections)


def test_drumkit_names() -> None:
    assert piece_of("Kick Stomp") == "kick"
    assert piece_of("Sabian Hat Pedal") == "hat_pedal"
    assert piece_of("Hi-Hat Semiopen (Paiste)") == "hat_open"
    assert piece_of("Pearl Tom Floor") == "tom_floor"
    assert piece_of("c#3 - stick") == "rim"
    assert piece_of("Snare Roll") is None


@pytest.mark.slow
def test_faster_than_real_time(resources: Resources, tmp_path: Path) -> None:
    started = time.monotonic()
    generate(tmp_path, songs=4, seconds=15.0, seed=3, jobs=2)
    elapsed = time.monotonic() - started
    assert 4 * 15.0 / elapsed > 4.0, f"only {4 * 15.0 / elapsed:.1f}x real time"


def test_bundled_demo_song() -> None:
    from tuiplayer.assets import DEMO_DIR
    from tuiplayer.synth.demo import DEMO_SECONDS

    audio = {}
    for name in FILES:
        info = sf.info(DEMO_DIR / f"{name}.flac")
        assert (info.samplerate, info.channels, info.frames) == (44100, 2, round(DEMO_SECONDS * 44100))
        audio[name] = sf.read(DEMO_DIR / f"{name}.flac", dtype="float32")[0]
    total = sum(audio[stem] for stem in STEMS)
    assert float(np.max(np.abs(total - audio["mixture"]))) < 4 / 2**15  # 16-bit rounding of five files
    doc = json.loads((DEMO_DIR / "song.json").read_text())
    sung = [s for s in doc["sections"] if "vocals" in s["stems"]]
    assert sung and len(sung) < len(doc["sections"])
    for section in sung:
        a, b = int(section["start_s"] * 44100), int(section["end_s"] * 44100)
        assert _db(audio["vocals"][a:b]) > -35


def test_synth_command_writes_songs_and_refuses_to_overwrite(tmp_path: Path) -> None:
    from conftest import run_cli

    out = tmp_path / "my songs"
    first = run_cli("synth", out, "--songs", "2", "--seconds", "3", "--seed", "5", "--jobs", "2")
    assert first.returncode == 0, first.stderr
    songs = sorted(p.name for p in out.iterdir())
    assert len(songs) == 2 and all((out / s / "mixture.wav").is_file() for s in songs)
    again = run_cli("synth", out, "--songs", "2", "--seconds", "3", "--seed", "5")
    assert again.returncode == 2 and "--force" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_espeak_that_does_not_answer_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from tuiplayer.errors import TuiplayerError
    from tuiplayer.synth.vocals import WordBank

    def hang(*args: object, **kwargs: object) -> None:
        raise subprocess.TimeoutExpired("espeak-ng", 30)

    monkeypatch.setattr(subprocess, "run", hang)
    with pytest.raises(TuiplayerError, match="did not say 'la' within 30 s"):
        WordBank("espeak-ng", "en").speak("la", 160)
