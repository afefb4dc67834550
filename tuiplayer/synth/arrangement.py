"""Song form: which sections, how long, their chords, their energy and who plays in each.

The generators of drums, bass, other parts and the vocal melody all read the same list of
`SectionPlan`s, so every stem agrees on where sections start, which chord sounds and who rests.
Positions here are in bars and beats; `score.TimeGrid` turns them into seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tuiplayer.synth.styles import Genre
from tuiplayer.synth.theory import Chord, Key, parse_roman

SECTION_ENERGY: dict[str, float] = {
    "intro": 0.45, "verse": 0.62, "prechorus": 0.75, "chorus": 0.95, "bridge": 0.6,
    "instrumental": 0.8, "breakdown": 0.4, "outro": 0.55,
}
"""How hard each kind of section plays (0..1): velocities, density, extra parts."""

FORMS: tuple[tuple[str, ...], ...] = (
    ("intro", "verse", "chorus", "verse", "chorus", "bridge", "chorus", "outro"),
    ("intro", "verse", "verse", "chorus", "instrumental", "verse", "chorus", "chorus", "outro"),
    ("intro", "verse", "prechorus", "chorus", "verse", "prechorus", "chorus", "breakdown", "chorus", "outro"),
    ("intro", "chorus", "verse", "chorus", "instrumental", "chorus", "outro"),
    ("intro", "verse", "chorus", "instrumental", "verse", "chorus", "bridge", "chorus", "outro"),
)
"""Whole-song forms; a song of a few seconds plays a stretch of one of them."""

VOCAL_SECTIONS: frozenset[str] = frozenset({"verse", "prechorus", "chorus", "bridge"})
"""Sections where the singer normally sings (a bridge may also be instrumental)."""

MIN_TEMPO_BPM, MAX_TEMPO_BPM = 70.0, 180.0

AUDIBLE_S = 1.0
"""A section must start this long before the end of the song to count as heard."""
"""Tempo range of every song (also after fitting an ending)."""

ENDING_RING_S = (1.2, 2.6)
"""Range of the seconds the final chord rings at the end of a song that ends (rather than being cut)."""


@dataclass(frozen=True)
class BeatNote:
    """A note while composing: start and duration in beats, MIDI pitch, velocity 1..127."""

    start: float
    duration: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class ChordSpan:
    """A chord sounding from start_beat to end_beat (beats from the song start)."""

    start_beat: float
    end_beat: float
    chord: Chord


@dataclass(frozen=True)
class SectionPlan:
    """One section as the part generators see it.

    start_bar, bars: position and length in bars (the last bar of a `final` section is the
    final chord, struck once and left to ring). progression: its Roman-numeral progression.
    vocals/drums/bass: whether those stems play; other_roles: the "other" roles playing.
    next_drums: whether drums play in the section after (for fills and crashes).
    """

    name: str
    start_bar: int
    bars: int
    energy: float
    progression: str
    chords: tuple[ChordSpan, ...]
    vocals: bool
    drums: bool
    bass: bool
    other_roles: frozenset[str]
    next_drums: bool
    final: bool = False

    def chord_at(self, beat: float) -> Chord:
        """The chord sounding at a beat inside this section."""
        for span in self.chords:
            if span.start_beat <= beat < span.end_beat:
                return span.chord
        return self.chords[-1].chord if beat >= self.chords[-1].end_beat else self.chords[0].chord


@dataclass(frozen=True)
class Arrangement:
    """The whole form: sections in order, bar length, tempo after fitting, and the key."""

    sections: tuple[SectionPlan, ...]
    beats_per_bar: int
    tempo_bpm: float
    key: Key
    ending: bool

    @property
    def total_bars(self) -> int:
        return self.sections[-1].start_bar + self.sections[-1].bars

    def chord_at(self, beat: float) -> Chord:
        """The chord sounding at a beat of the song."""
        bar = int(beat // self.beats_per_bar)
        for section in self.sections:
            if section.start_bar <= bar < section.start_bar + section.bars:
                return section.chord_at(beat)
        return self.sections[-1].chord_at(beat)


def _section_unit(total_bars: int) -> int:
    """Typical section length in bars for a song of `total_bars` (short songs: short sections)."""
    if total_bars >= 40:
        return 8
    if total_bars >= 12:
        return 4
    if total_bars >= 5:
        return 2
    return 1


def _section_bars(name: str, unit: int, rng: np.random.Generator) -> int:
    if name in ("intro", "outro", "breakdown", "prechorus"):
        return max(1, unit // 2 if rng.random() < 0.6 else unit)
    if name in ("bridge", "instrumental"):
        return unit
    return unit * (2 if unit <= 4 and rng.random() < 0.2 else 1)


def plan_form(rng: np.random.Generator, total_bars: int, ending: bool) -> list[tuple[str, int]]:
    """Section names and lengths (bars) covering at least `total_bars` bars.

    A song starts at its intro, or (often) somewhere inside the form, as a crop of a longer song
    would; with `ending` the list is cut to end on the outro (which holds the final chord bar).
    """
    form = FORMS[int(rng.integers(len(FORMS)))]
    unit = _section_unit(total_bars)
    if ending:
        names: list[str] = ["outro"]
        bars = [_section_bars("outro", unit, rng) + 1]  # + the final-chord bar
        i = len(form) - 2
        while sum(bars) < total_bars:
            names.insert(0, form[i])
            bars.insert(0, _section_bars(form[i], unit, rng))
            i = i - 1 if i > 1 else len(form) - 2  # loop over the body, never past the intro
        # trim the first section so the total is exact
        excess = sum(bars) - total_bars
        while excess >= bars[0] and len(bars) > 1:
            excess -= bars.pop(0)
            names.pop(0)
        bars[0] -= excess
        if len(bars) > 1 and bars[0] < min(unit, 4) and names[0] != "intro":
            names[0] = "intro"  # a stub of a section before the first full one plays as an intro
        return list(zip(names, bars, strict=True))
    whole_song = total_bars >= 2 * unit * len(form) // 3  # long enough to be heard from its start
    start = 0 if (whole_song or rng.random() < 0.4) else int(rng.integers(1, len(form) - 1))
    out: list[tuple[str, int]] = []
    i, total = start, 0
    while total < total_bars:
        name = form[i % len(form)]
        i += 1
        if i > len(form) and name == "intro":
            continue  # the intro opens a song only once
        bars = _section_bars(name, unit, rng)
        if name == "outro" and total + bars < total_bars:
            continue  # an outro only where the song ends
        out.append((name, bars))
        total += bars
    return out


def _weighted(rng: np.random.Generator, options: tuple[tuple[float, float], ...]) -> float:
    weights = np.array([w for _, w in options], dtype=float)
    return options[int(rng.choice(len(options), p=weights / weights.sum()))][0]


def _progressions(rng: np.random.Generator, genre: Genre, key: Key) -> dict[str, str]:
    """A progression for each kind of section (verse, chorus and bridge differ)."""
    pool = genre.progressions_major if key.mode in ("major", "mixolydian") else genre.progressions_minor
    picks = [pool[int(i)] for i in rng.permutation(len(pool))]
    while len(picks) < 3:
        picks.append(picks[-1])
    verse, chorus, bridge = picks[0], picks[1], picks[2]
    return {
        "intro": chorus if rng.random() < 0.5 else verse, "verse": verse, "prechorus": bridge,
        "chorus": chorus, "bridge": bridge, "instrumental": chorus if rng.random() < 0.6 else verse,
        "breakdown": verse, "outro": chorus,
    }


def arrange(
    rng: np.random.Generator,
    genre: Genre,
    key: Key,
    tempo_bpm: float,
    beats_per_bar: int,
    seconds: float,
    roles: tuple[str, ...],
    ending: bool,
) -> Arrangement:
    """Plan the sections of a song lasting `seconds`.

    roles: the song's "other" roles, first = the main harmonic part (plays everywhere);
    "counter" joins in energetic sections, "lead" plays melodies where the singer rests.
    With `ending`, the tempo is nudged so the final chord falls a ring time (ENDING_RING_S)
    before the end.
    """
    bar_s = beats_per_bar * 60.0 / tempo_bpm
    if ending:
        body_s = seconds - float(rng.uniform(*ENDING_RING_S))
        exact = body_s / bar_s
        options = [b for b in (math.floor(exact), math.ceil(exact)) if b >= 3]
        fits = [b for b in options if MIN_TEMPO_BPM <= beats_per_bar * 60.0 * b / body_s <= MAX_TEMPO_BPM]
        total_bars = min(fits or options or [3], key=lambda b: abs(b - exact))
        bar_s = body_s / total_bars
        tempo_bpm = beats_per_bar * 60.0 / bar_s
        total_bars += 1  # the final-chord bar (partly heard)
    else:
        total_bars = max(1, math.ceil(seconds / bar_s))
    form = plan_form(rng, total_bars, ending)
    progressions = _progressions(rng, genre, key)
    chords_per_bar = _weighted(rng, genre.harmonic_rhythm)
    main_role, extra_roles = roles[0], roles[1:]

    # who plays where
    names = [n for n, _ in form]
    vocals = [n in VOCAL_SECTIONS and not (n == "bridge" and rng.random() < 0.4) for n in names]
    # every song has a singer somewhere it is heard: a section starting more than
    # AUDIBLE_S before the end (else the first section becomes a verse)
    starts = np.cumsum([0] + [b for _, b in form])[:-1] * bar_s
    audible = [float(s) < seconds - AUDIBLE_S or i == 0 for i, s in enumerate(starts)]
    if not any(v and a for v, a in zip(vocals, audible, strict=True)):
        heard = [i for i, a in enumerate(audible) if a]
        pick = max(heard, key=lambda i: min(form[i][1] * bar_s, seconds - float(starts[i])))
        names[pick] = names[pick] if names[pick] in VOCAL_SECTIONS else "verse"
        vocals[pick] = True
    no_drums_intro = rng.random() < (0.6 if genre.name == "ballad" else 0.3)
    drums = [
        not ((n == "intro" and no_drums_intro) or (n == "breakdown" and rng.random() < 0.7))
        for n in names
    ]
    bass = [not ((n == "intro" and rng.random() < 0.35) or (n == "breakdown" and rng.random() < 0.5))
            for n in names]
    for i, v in enumerate(vocals):  # the sung sections carry the whole band
        if v and names[i] in ("verse", "chorus"):
            drums[i] = bass[i] = True
    if len(names) > 1 and not any(v for v, d in zip(vocals, drums, strict=True) if d):
        first_vocal = vocals.index(True)
        drums[first_vocal] = bass[first_vocal] = True

    sections: list[SectionPlan] = []
    bar = 0
    progress: dict[str, int] = {}  # where each progression goes on in the next section using it
    for i, (name, bars) in enumerate(zip(names, [b for _, b in form], strict=True)):
        final = ending and i == len(names) - 1
        progression = progressions[name]
        symbols = progression.split()
        chord_beats = beats_per_bar / chords_per_bar
        spans: list[ChordSpan] = []
        beat = bar * beats_per_bar
        end = (bar + bars - (1 if final else 0)) * beats_per_bar
        # a section shorter than its progression continues it where the last such section stopped
        k = progress.get(progression, 0) if bars * chords_per_bar < len(symbols) else 0
        while beat < end - 1e-9:
            stop = min(beat + chord_beats, end)
            spans.append(ChordSpan(beat, stop, parse_roman(symbols[k % len(symbols)], key)))
            beat, k = stop, k + 1
        progress[progression] = k % len(symbols)
        if final:  # the last bar: the tonic, struck once
            tonic = "i" if key.mode in ("minor", "dorian") else "I"
            spans.append(ChordSpan(end, end + beats_per_bar, parse_roman(tonic, key)))
        energy = float(np.clip(SECTION_ENERGY[name] + rng.normal(0, 0.05), 0.3, 1.0))
        active = {main_role}
        for role in extra_roles:
            if role == "lead":
                if not vocals[i] and name != "breakdown" and (name != "intro" or rng.random() < 0.5):
                    active.add(role)
            elif energy >= 0.7 or rng.random() < 0.35:
                active.add(role)
        sections.append(
            SectionPlan(
                name=name, start_bar=bar, bars=bars, energy=energy, progression=progression,
                chords=tuple(spans), vocals=vocals[i], drums=drums[i], bass=bass[i],
                other_roles=frozenset(active), next_drums=drums[i + 1] if i + 1 < len(names) else False,
                final=final,
            )
        )
        bar += bars
    return Arrangement(tuple(sections), beats_per_bar, tempo_bpm, key, ending)
