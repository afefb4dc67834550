"""The vocal melody: phrases that fit the chords, lyrics on the notes, harmonies and breaths.

Phrases are one or two bars long and end with a rest to breathe. Their rhythm is a motif the
section repeats (A A B A …); pitches land on chord tones on strong beats and move by scale steps
in between, inside the singer's range, and a phrase ends on a chord tone. Rapped sections use a
dense sixteenth grid around one pitch centre (the words keep their own speech melody).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tuiplayer.synth.arrangement import Arrangement, BeatNote
from tuiplayer.synth.lyrics import FILLER_WORDS, LINES, RAP_LINES
from tuiplayer.synth.score import Phrase, Singer, SungNote, TimeGrid
from tuiplayer.synth.theory import chord_scale, scale_pitches, voice_chord

MALE_CENTRE, FEMALE_CENTRE = 57, 66
"""Middle of the sung range (MIDI): A3 for male singers, F#4 for female ones."""

RANGE_ST = 8
"""Semitones the melody may go either side of its centre."""

HARMONY_MAX_ABOVE_ST = 14
"""Backing voices stay within this many semitones above the melody's centre."""

RAP_BELOW_ST = 7
"""A rapped part sits this many semitones below the singer's sung centre."""

BREATH_MIN_GAP_S = 0.35
"""A breath is heard before a phrase when at least this much silence precedes it."""


@dataclass(frozen=True)
class VocalScore:
    """The sung material: lead phrases, harmony phrases (phrase, pan, gain dB), breaths."""

    lead: tuple[Phrase, ...]
    harmonies: tuple[tuple[Phrase, float, float], ...]
    breaths: tuple[tuple[float, float], ...]
    centre: int


def _rhythm(
    phrase_beats: float, grid: float, density: float, rng: np.random.Generator, rap: bool
) -> list[tuple[float, float]]:
    """Onsets and durations (beats) of one phrase, ending with a rest of at least one beat."""
    rest = 1.0 if phrase_beats >= 4 else 0.5
    start = float(rng.choice([0.0, 0.0, 0.5, 1.0])) if not rap else float(rng.choice([0.0, 0.25, 0.5]))
    usable = phrase_beats - rest
    choices = np.array([grid, 2 * grid, 3 * grid, 4 * grid, 6 * grid])
    weights = np.array([1.0 + 2 * density, 2.0 + density, 0.7, 1.2 - 0.6 * density, 0.4 - 0.2 * density])
    if rap:
        weights = np.array([4.0, 2.0, 0.5, 0.2, 0.0])
    weights = np.clip(weights, 0.01, None)
    out: list[tuple[float, float]] = []
    t = start
    while t < usable - 1e-6:
        dur = float(rng.choice(choices, p=weights / weights.sum()))
        dur = min(dur, usable - t)
        if dur < grid * 0.99:
            break
        out.append((t, dur))
        t += dur
        if not rap and rng.random() < 0.08 and t < usable - 2 * grid:
            t += grid  # a short rest inside the phrase
    if not out:
        out = [(start, max(grid, usable - start))]
    # the last note is held: stretch it towards the end of the sung part
    last_t, last_d = out[-1]
    if not rap:
        out[-1] = (last_t, max(last_d, min(usable - last_t, 2.0)))
    return out


def _pitches(
    onsets: list[tuple[float, float]],
    offset_beat: float,
    arrangement: Arrangement,
    lo: int,
    hi: int,
    contour: list[float] | None,
    rng: np.random.Generator,
    start_pitch: float,
) -> tuple[list[int], list[float]]:
    """Pitches for a rhythm; `contour` (target offsets) repeats a motif over new chords."""
    key = arrangement.key
    pitches: list[int] = []
    targets: list[float] = []
    prev = start_pitch
    shape = str(rng.choice(["arch", "down", "up", "wave"]))
    n = len(onsets)
    for i, (t, dur) in enumerate(onsets):
        beat = offset_beat + t
        chord = arrangement.chord_at(beat)
        strong = abs(t - round(t)) < 1e-6 and (round(t) % 2 == 0 or dur >= 1.0)
        last = i == n - 1
        if contour is not None and i < len(contour):
            target = (lo + hi) / 2 + contour[i]
        else:
            x = i / max(1, n - 1)
            bias = {"arch": 4 * x * (1 - x) * 5 - 1, "down": 3 - 6 * x, "up": -3 + 6 * x,
                    "wave": 3 * np.sin(2 * np.pi * x)}[shape]
            target = 0.55 * prev + 0.45 * ((lo + hi) / 2 + bias) + rng.normal(0, 1.6)
        targets.append(target - (lo + hi) / 2)
        if strong or last:
            pcs = chord.pitch_classes if not last else chord.triad
        else:
            pcs = chord_scale(chord, key, avoid_clashes=dur >= 1.0)
        candidates = scale_pitches(pcs, lo, hi)
        # stay singable: prefer steps, allow a leap now and then
        max_leap = 9 if rng.random() < 0.15 else 5
        near = [p for p in candidates if abs(p - prev) <= max_leap] or candidates
        pitch = min(near, key=lambda p: (abs(p - target), p))
        pitches.append(int(pitch))
        prev = pitch
    return pitches, targets


def _words(n_notes: int, language: str, rap: bool, rng: np.random.Generator) -> list[str]:
    """Words for n notes: a lyric line; extra notes hold the last word or sing a filler."""
    pool = RAP_LINES if rap else LINES[language]
    words = pool[int(rng.integers(len(pool)))].split()
    while rap and len(words) < n_notes:
        words += pool[int(rng.integers(len(pool)))].split()
    out = words[:n_notes]
    while len(out) < n_notes:
        if rng.random() < 0.6 and out:
            out.append("")  # melisma: the previous word goes on over this note
        else:
            out.append(str(rng.choice(FILLER_WORDS)))
    if out and out[0] == "":
        out[0] = "oh"
    return out


def compose_melody(
    arrangement: Arrangement,
    grid: TimeGrid,
    singer: Singer,
    genre: str,
    rng: np.random.Generator,
) -> VocalScore:
    """The vocal score for every section the arrangement marks as sung."""
    bpb = arrangement.beats_per_bar
    bar_s = bpb * grid.beat_s
    rap = singer.style == "rap"
    centre = MALE_CENTRE if singer.gender == "male" else FEMALE_CENTRE
    # move the centre to a comfortable place for the key (the tonic or fifth near the centre)
    tonic = arrangement.key.tonic
    centre = min((p for p in range(centre - 4, centre + 5) if p % 12 in (tonic, (tonic + 7) % 12)),
                 key=lambda p: abs(p - centre))
    lead: list[Phrase] = []
    harmonies: list[tuple[Phrase, float, float]] = []
    breaths: list[tuple[float, float]] = []
    motifs: dict[str, tuple[list[tuple[float, float]], list[float]]] = {}
    sung_lines: dict[str, list[str]] = {}
    harmony_sections = {"chorus"} if rng.random() < 0.65 else set()
    if rng.random() < 0.25:
        harmony_sections.add("bridge")
    harmony_interval = str(rng.choice(["third_up", "third_up", "sixth_up", "double"]))
    last_end_s = -10.0
    start_pitch = float(centre)
    for section in arrangement.sections:
        if not section.vocals:
            continue
        lift = {"chorus": 4, "prechorus": 2, "bridge": 2}.get(section.name, 0)
        lo, hi = centre - RANGE_ST + lift, centre + RANGE_ST + lift - (3 if rap else 0)
        if rap:  # rapped in a speaking register, below the sung one
            lo, hi = centre - RAP_BELOW_ST - 3, centre - RAP_BELOW_ST + 3
        phrase_bars = 2 if (bar_s < 2.6 and section.bars >= 2) else 1
        density = float(np.clip(0.35 + 0.5 * section.energy + (0.3 if genre in ("funk", "hiphop") else 0)
                                - (0.3 if grid.tempo_bpm > 140 else 0), 0.1, 1.0))
        note_grid = 0.25 if rap or (genre in ("funk", "hiphop") and rng.random() < 0.4) else 0.5
        plan = ["A", "A", "B", "A"] if rng.random() < 0.5 else ["A", "B", "A", "B"]
        n_phrases = max(1, section.bars // phrase_bars)
        section_end_s = grid.seconds((section.start_bar + section.bars) * bpb)
        section_start_s = grid.seconds(section.start_bar * bpb)
        for k in range(n_phrases):
            if section.final and section.start_bar + k * phrase_bars >= arrangement.total_bars - 1:
                break
            label = f"{section.name}{plan[k % len(plan)]}"
            offset = (section.start_bar + k * phrase_bars) * bpb
            phrase_beats = phrase_bars * bpb
            if section.final:
                phrase_beats = min(phrase_beats, (arrangement.total_bars - 1) * bpb - offset)
            if label in motifs and phrase_beats == phrase_bars * bpb:
                rhythm, contour = motifs[label]
                pitches, _ = _pitches(rhythm, offset, arrangement, lo, hi, contour, rng, start_pitch)
            else:
                rhythm = _rhythm(phrase_beats, note_grid, density, rng, rap)
                pitches, contour = _pitches(rhythm, offset, arrangement, lo, hi, None, rng, start_pitch)
                motifs.setdefault(label, (rhythm, contour))
            if rap:
                pitches = [centre - RAP_BELOW_ST + int(rng.integers(-1, 2)) for _ in pitches]
            remembered = sung_lines.get(label)
            if remembered is not None and len(remembered) == len(rhythm) and (
                    section.name in ("chorus", "prechorus") or rng.random() < 0.3):
                words = remembered  # choruses repeat their words
            else:
                words = _words(len(rhythm), singer.language, rap, rng)
                sung_lines[label] = words
            notes = []
            for i, ((t, dur), pitch, word) in enumerate(zip(rhythm, pitches, words, strict=True)):
                start = grid.seconds(offset + t) + float(rng.normal(0, singer.tightness_s))
                end = grid.seconds(offset + t + dur)
                end = min(end, section_end_s - 0.02)
                if end - start < 0.06:
                    continue
                accent = 1.0 if abs(t % 1) < 1e-6 else 0.88
                vel = float(np.clip((0.78 + 0.22 * section.energy) * accent + rng.normal(0, 0.04), 0.4, 1.0))
                if i == 0 and word == "":
                    word = "oh"
                notes.append(SungNote(max(section_start_s, start), end, int(pitch), word, vel))
            if not notes:
                continue
            if notes[0].word == "":
                notes[0] = SungNote(notes[0].start_s, notes[0].end_s, notes[0].pitch, "oh", notes[0].velocity)
            phrase = Phrase(tuple(notes), earliest_s=section_start_s)
            lead.append(phrase)
            start_pitch = float(pitches[-1])
            gap = phrase.start_s - max(last_end_s, section_start_s)
            if gap >= BREATH_MIN_GAP_S and rng.random() < 0.75:
                dur = float(min(rng.uniform(0.16, 0.34), gap - 0.08))
                begin = phrase.start_s - dur - 0.04
                if begin >= section_start_s and dur > 0.1:
                    breaths.append((begin, dur))
            last_end_s = phrase.end_s
            if section.name in harmony_sections and not rap:
                harmonies += _harmonize(phrase, arrangement, grid, harmony_interval, centre, rng)
    return VocalScore(tuple(lead), tuple(harmonies), tuple(breaths), centre)


def _harmonize(
    phrase: Phrase, arrangement: Arrangement, grid: TimeGrid, interval: str, centre: int, rng: np.random.Generator
) -> list[tuple[Phrase, float, float]]:
    """Backing voices for one phrase: a diatonic third or sixth above, or a double.

    A sixth above that would climb more than HARMONY_MAX_ABOVE_ST over the melody's centre is
    sung an octave lower (a third below), as backing singers do.
    """
    key = arrangement.key
    pan = float(rng.choice([-1, 1]) * rng.uniform(0.25, 0.6))
    out: list[tuple[Phrase, float, float]] = []
    earliest = phrase.earliest_s

    def moved(n: SungNote, spread_s: float) -> float:
        return max(earliest, n.start_s + float(rng.normal(0, spread_s)))

    if interval == "double":
        for side in (pan, -pan):
            shifted = [SungNote(moved(n, 0.012), n.end_s, n.pitch, n.word, n.velocity * 0.9) for n in phrase.notes]
            out.append((Phrase(tuple(shifted), earliest), side, float(rng.uniform(-10, -7))))
        return out
    notes = []
    for n in phrase.notes:
        beat = n.start_s / grid.beat_s  # close enough to find the chord
        chord = arrangement.chord_at(beat)
        scale = sorted(set(key.scale) | set(chord.pitch_classes))
        above = scale_pitches(scale, n.pitch + 1, n.pitch + 12)
        steps = (3, 4, 5) if interval == "third_up" else (8, 9)
        cands = [p for p in above if p - n.pitch in steps]
        chord_tones = [p for p in cands if p % 12 in chord.pitch_classes]
        pitch = (chord_tones or cands or [n.pitch + steps[1]])[0]
        if pitch > centre + HARMONY_MAX_ABOVE_ST:
            pitch -= 12
        notes.append(SungNote(moved(n, 0.01), n.end_s, int(pitch), n.word, n.velocity * 0.85))
    out.append((Phrase(tuple(notes), earliest), pan, float(rng.uniform(-9, -6))))
    return out


def backing_pad(arrangement: Arrangement, sections: set[str], rng: np.random.Generator) -> list[BeatNote]:
    """Sustained "ooh" chords for a GM choir patch behind the lead in some sections."""
    notes: list[BeatNote] = []
    previous = None
    for section in arrangement.sections:
        if section.name not in sections or not section.vocals:
            continue
        for span in (section.chords[:-1] if section.final else section.chords):
            previous = voice_chord(span.chord, 55, 74, 3, previous)
            vel = int(45 + 30 * section.energy + rng.normal(0, 4))
            notes += [BeatNote(span.start_beat, (span.end_beat - span.start_beat) * 0.97, p, vel) for p in previous]
    return notes
