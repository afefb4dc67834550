"""Compose one song from (seed, index): genre, tempo, key, feel, form, and every part's notes.

All randomness comes from `np.random.default_rng([seed, index])`, so a song depends on nothing
else (not on other songs, the order they are made in, or the clock). The result is a `Song`
score; `render` makes it audible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from tuiplayer.config import STEMS
from tuiplayer.synth.arrangement import MAX_TEMPO_BPM, MIN_TEMPO_BPM, Arrangement, BeatNote, arrange
from tuiplayer.synth.drumkits import Kit
from tuiplayer.synth.drums import GROOVES, compose_drums, compose_percussion
from tuiplayer.synth.lyrics import ENGLISH_ACCENTS, FEMALE_VOICES, LANGUAGE_WEIGHTS, MALE_VOICES
from tuiplayer.synth.melody import backing_pad, compose_melody
from tuiplayer.synth.parts import bass_line, other_part
from tuiplayer.synth.score import DrumPart, Note, Part, Section, Singer, Song, TimeGrid, VocalPart
from tuiplayer.synth.styles import GENRE_WEIGHTS, GENRES, Genre
from tuiplayer.synth.theory import Key

MAIN_ROLES: tuple[tuple[str, float], ...] = (("comp", 0.6), ("pad", 0.15), ("arp", 0.12), ("riff", 0.13))
EXTRA_ROLES: tuple[str, ...] = ("pad", "arp", "counter", "lead", "riff")

PERCUSSION_KITS: tuple[str, ...] = ("Gimme A Hand 1.0", "ForzeeStereo", "circAfrique v4", "ElectricEmpireKit")
"""Hydrogen kits that can play percussion layers (shakers, tambourines, congas …)."""

CHOIR_PROGRAMS: tuple[int, ...] = (52, 53, 54)
"""GM choir/voice patches: only ever a quiet "ooh" behind the sung lead."""

MIN_SECTION_S = 1.0
"""A section cut to less than this by the end of the song is merged into the one before."""

PLAYS_MIN_S = 0.05
"""A stem plays in a section when some note of it sounds there for at least this long."""


T = TypeVar("T")


def song_name(seed: int, index: int, genre: str) -> str:
    """The folder name of a song: synth-<seed>-<index>-<genre>."""
    return f"synth-{seed}-{index:04d}-{genre}"


def _pick(rng: np.random.Generator, weights: dict[str, float] | tuple[tuple[str, float], ...]) -> str:
    items = list(weights.items()) if isinstance(weights, dict) else list(weights)
    p = np.array([w for _, w in items], dtype=float)
    return items[int(rng.choice(len(items), p=p / p.sum()))][0]


def _one(rng: np.random.Generator, options: Sequence[T]) -> T:
    return options[int(rng.integers(len(options)))]


def _singer(rng: np.random.Generator, genre: Genre) -> Singer:
    language = _pick(rng, LANGUAGE_WEIGHTS)
    rap = language == "en" and rng.random() < genre.rap_share
    if rap:
        language = "en"
    female = rng.random() < (0.35 if rap else 0.5)
    variant = _one(rng, FEMALE_VOICES if female else MALE_VOICES)
    accent = _one(rng, ENGLISH_ACCENTS) if language == "en" else language
    return Singer(
        voice=f"{accent}+{variant}",
        language=language,
        gender="female" if female else "male",
        style="rap" if rap else "sung",
        formant_shift=float(rng.uniform(0.97, 1.09) if female else rng.uniform(0.9, 1.04)),
        vibrato_hz=float(rng.uniform(4.8, 6.6)),
        vibrato_st=0.0 if rap else float(rng.uniform(0.12, 0.6)),
        scoop_st=0.0 if rap else float(rng.uniform(0.0, 1.5)),
        glide_s=float(rng.uniform(0.04, 0.12)),
        tightness_s=float(rng.uniform(0.004, 0.02)),
        breathiness=float(rng.uniform(0.0, 0.35)),
    )


def _to_notes(beat_notes: list[BeatNote], grid: TimeGrid, seconds: float) -> tuple[Note, ...]:
    out = []
    for bn in beat_notes:
        start = grid.seconds(bn.start)
        if start >= seconds:
            continue
        end = grid.seconds(bn.start + bn.duration)
        out.append(Note(start, max(end, start + 0.03), bn.pitch, bn.velocity))
    return tuple(sorted(out, key=lambda n: (n.start_s, n.pitch)))


def _roles(rng: np.random.Generator) -> tuple[str, ...]:
    main = _pick(rng, MAIN_ROLES)
    extras: list[str] = []
    count = int(rng.choice([0, 1, 1, 2, 2]))
    pool = [r for r in EXTRA_ROLES if r != main]
    if rng.random() < 0.55:
        extras.append("lead")
        pool.remove("lead")
    while len(extras) < count:
        extras.append(pool.pop(int(rng.integers(len(pool)))))
    return (main, *extras[:2])


def _sections(arrangement: Arrangement, grid: TimeGrid, song_seconds: float,
              events: dict[str, list[tuple[float, float]]]) -> tuple[Section, ...]:
    """Sections in seconds, each with the stems that really sound in it (from the events)."""
    bpb = arrangement.beats_per_bar
    out = []
    plans = list(arrangement.sections)
    # a last section that would barely start is heard as the end of the one before
    while len(plans) > 1 and song_seconds - grid.seconds(plans[-1].start_bar * bpb) < MIN_SECTION_S:
        plans.pop()
    for plan in plans:
        start = grid.seconds(plan.start_bar * bpb)
        end = song_seconds if plan is plans[-1] else grid.seconds((plan.start_bar + plan.bars) * bpb)
        stems = tuple(
            stem for stem in STEMS
            if any(min(e, end) - max(s, start) >= PLAYS_MIN_S or (s == e and start <= s < end) for s, e in events[stem])
        )
        out.append(Section(plan.name, round(start, 4), round(end, 4), plan.bars,
                           tuple(span.chord.symbol for span in plan.chords), round(plan.energy, 3), stems))
    return tuple(out)


def compose(seed: int, index: int, seconds: float, soundfonts: tuple[str, ...], kits: dict[str, Kit]) -> Song:
    """The song number `index` of the set made with `seed`, lasting `seconds`.

    soundfonts: the .sf2 files parts may use (by index); kits: the Hydrogen kits available.
    """
    rng = np.random.default_rng([seed, index])
    genre = GENRES[_pick(rng, GENRE_WEIGHTS)]
    feel = _pick(rng, genre.feels)
    beats_per_bar = 3 if feel == "waltz" else 4
    swing = float(rng.uniform(*genre.swing)) if feel in ("shuffle", "swing16") else 0.5
    if feel == "waltz" and genre.name == "jazz":
        swing = float(rng.uniform(*genre.swing))
    tempo = float(rng.uniform(*genre.tempo_bpm))
    if feel == "halftime" and genre.name == "hiphop":
        tempo = float(rng.uniform(130, 160))  # trap: fast tempo, half-time groove
    tempo = float(np.clip(tempo, MIN_TEMPO_BPM, MAX_TEMPO_BPM))
    mode = "major" if rng.random() < genre.major else "minor"
    if genre.modal and rng.random() < 0.3:
        if genre.modal == "mixolydian" and mode == "major":
            mode = "mixolydian"
        elif genre.modal == "dorian" and mode == "minor":
            mode = "dorian"
    key = Key(int(rng.integers(12)), mode)
    roles = _roles(rng)
    ending = seconds >= 8 and rng.random() < 0.25
    arrangement = arrange(rng, genre, key, tempo, beats_per_bar, seconds, roles, ending)
    grid = TimeGrid(arrangement.tempo_bpm, swing, 0.25 if feel == "swing16" else 0.5)
    n_fonts = len(soundfonts)

    # drums: a recorded Hydrogen kit or a GM kit, maybe with a percussion layer
    grooves = (genre.halftime_grooves if feel == "halftime" else
               genre.waltz_grooves if beats_per_bar == 3 else genre.grooves)
    hits, drummer, groove = compose_drums(arrangement, grid, genre.name, grooves, genre.fills, rng)
    full_kits = [k for k in genre.hydrogen_kits if k in kits and kits[k].is_full_kit]
    if full_kits and rng.random() < genre.hydrogen_share:
        kit_part = DrumPart("kit", "hydrogen", _one(rng, full_kits), tuple(hits))
    else:
        program = int(_one(rng, genre.gm_kits))
        kit_part = DrumPart("kit", "gm", f"gm-{program}", tuple(hits), int(rng.integers(n_fonts)), program)
    drum_parts = [kit_part]
    info: dict[str, object] = {"groove": groove, "drummer_timing_ms": round(drummer.timing_s * 1000, 1)}
    if rng.random() < genre.percussion:
        perc_hits, pattern = compose_percussion(arrangement, grid, genre.name, rng)
        pieces = {h.piece for h in perc_hits}
        perc_kits = [k for k in PERCUSSION_KITS if k in kits and pieces <= set(kits[k].pieces)]
        if perc_hits and perc_kits and rng.random() < 0.6:
            drum_parts.append(DrumPart("percussion", "hydrogen", _one(rng, perc_kits), tuple(perc_hits)))
        elif perc_hits:
            drum_parts.append(DrumPart("percussion", "gm", "gm-0", tuple(perc_hits), int(rng.integers(n_fonts)), 0))
        info["percussion"] = pattern

    # bass
    bass_style = _one(rng, genre.bass_styles)
    bass_program = int(_one(rng, genre.bass_programs))
    kick = GROOVES[groove].steps.get("kick")
    bass_notes = _to_notes(bass_line(arrangement, bass_style, kick, rng), grid, seconds)
    parts = [Part("bass", "bass", "bass", int(rng.integers(n_fonts)), 0, bass_program, bass_notes, 0.0)]
    info["bass_style"] = bass_style

    # other: 1–3 parts
    side = float(rng.choice([-1.0, 1.0]))
    for i, role in enumerate(roles):
        pool = {"comp": genre.comp, "pad": genre.pad, "arp": genre.arp, "riff": genre.riff,
                "counter": genre.counter, "lead": genre.lead}[role]
        program = int(_one(rng, pool))
        rhythm = _one(rng, genre.comp_rhythms) if role == "comp" else "power8"
        notes = _to_notes(other_part(arrangement, role, program, rhythm, rng), grid, seconds)
        if not notes:
            continue
        pan = (float(rng.uniform(-0.15, 0.15)) if role == "lead" else
               side * float(rng.uniform(0.0, 0.35)) if i == 0 else -side * float(rng.uniform(0.25, 0.7)))
        name = f"{role}{i}" if role != "comp" else f"comp-{rhythm}"
        parts.append(Part(name, "other", role, int(rng.integers(n_fonts)), 0, program, notes, pan))

    # vocals
    singer = _singer(rng, genre)
    score = compose_melody(arrangement, grid, singer, genre.name, rng)
    harmonies = tuple(score.harmonies)
    if genre.name in ("pop", "ballad", "reggae", "funk", "jazz") and singer.style == "sung" and rng.random() < 0.2:
        pad = _to_notes(backing_pad(arrangement, {"chorus", "bridge"}, rng), grid, seconds)
        if pad:
            parts.append(Part("oohs", "vocals", "backing", int(rng.integers(n_fonts)), 0,
                              int(_one(rng, CHOIR_PROGRAMS)), pad, float(rng.uniform(-0.3, 0.3))))
    vocal_part = VocalPart(singer, score.lead, harmonies, score.breaths)

    # which stems sound in each section, from the notes themselves
    events: dict[str, list[tuple[float, float]]] = {s: [] for s in STEMS}
    events["drums"] = [(h.time_s, h.time_s) for p in drum_parts for h in p.hits]
    for part in parts:
        events[part.stem] += [(n.start_s, n.end_s) for n in part.notes]
    events["vocals"] += [(n.start_s, n.end_s) for ph in score.lead for n in ph.notes]
    events["vocals"] += [(n.start_s, n.end_s) for ph, _, _ in harmonies for n in ph.notes]
    events["vocals"] += [(s, s + d) for s, d in score.breaths]
    sections = _sections(arrangement, grid, seconds, events)
    info.update(roles=list(roles), singer=singer.voice, vocal_style=singer.style, ending=ending)
    return Song(
        name=song_name(seed, index, genre.name), seed=seed, index=index, genre=genre.name,
        tempo_bpm=round(arrangement.tempo_bpm, 3), key=key.name, feel=feel, swing=round(swing, 3),
        beats_per_bar=beats_per_bar, seconds=seconds, sections=sections, parts=tuple(parts),
        drums=tuple(drum_parts), vocals=vocal_part, soundfonts=soundfonts, info=info,
    )
