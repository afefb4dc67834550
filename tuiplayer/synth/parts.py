"""Bass lines and the "other" parts (comping, pads, arpeggios, riffs, counter-melodies, leads).

Every generator reads the arrangement (sections, chords, who plays) and returns `BeatNote`s in
beats; `compose` converts them to seconds with the song's feel. Rhythms are one-bar templates
of (position, duration) in beats, cut to the bar length of 3/4 songs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tuiplayer.synth.arrangement import Arrangement, BeatNote, SectionPlan
from tuiplayer.synth.theory import Chord, chord_scale, nearest_pitch, scale_pitches, voice_chord

BASS_LOW, BASS_HIGH = 28, 52
"""Bass register (E1 … E3) in MIDI numbers."""

BASS_CENTRE = 38.0
"""Where bass roots are placed (around D2)."""

COMP_RHYTHMS: dict[str, tuple[tuple[float, float], ...]] = {
    "whole": ((0, 4),),
    "half": ((0, 2), (2, 2)),
    "quarters": ((0, 1), (1, 1), (2, 1), (3, 1)),
    "pulse8": tuple((i / 2, 0.45) for i in range(8)),
    "pop_sync": ((0, 1.5), (1.5, 1.0), (2.5, 1.5)),
    "power8": tuple((i / 2, 0.4) for i in range(8)),
    "rock_sync": ((0, 0.75), (0.75, 0.75), (1.5, 1.0), (2.5, 0.5), (3, 1.0)),
    "funk16": ((0, 0.2), (0.75, 0.15), (1.5, 0.2), (2.25, 0.15), (2.5, 0.2), (3.25, 0.15), (3.5, 0.2)),
    "stabs": ((0.5, 0.3), (1.75, 0.25), (2.5, 0.3), (3.5, 0.25)),
    "offbeat8": ((0.5, 0.3), (1.5, 0.3), (2.5, 0.3), (3.5, 0.3)),
    "house_stab": ((0.5, 0.4), (1.25, 0.25), (2.5, 0.4), (3.25, 0.6)),
    "skank": ((1, 0.3), (3, 0.3)),
    "bubble": ((0, 0.3), (0.5, 0.4), (1, 0.3), (1.5, 0.4), (2, 0.3), (2.5, 0.4), (3, 0.3), (3.5, 0.4)),
    "charleston": ((0, 0.6), (1.5, 0.5)),
    "jazz_comp": ((0, 0.8), (1.5, 0.4), (2.5, 0.8)),
    "arp_up": ((0, 4),),  # played as an arpeggio (see other_part)
}
"""Chord rhythms for the "comp" role: one bar of (position, duration) in beats."""

BASS_STYLES: tuple[str, ...] = ("roots8", "pop", "octave", "follow_kick", "offbeat", "pulse16", "funk",
                                "walking", "ballad", "reggae", "sub")
"""Bass-line styles `bass_line` knows."""

REGISTERS: dict[str, tuple[int, int]] = {
    "comp": (50, 77), "pad": (48, 74), "arp": (57, 86), "riff": (52, 76), "counter": (67, 89), "lead": (62, 86),
    "power": (40, 64),
}
"""MIDI ranges of the "other" roles."""

GUITARS = frozenset(range(24, 32))


def _velocity(section: SectionPlan, rng: np.random.Generator, scale: float = 1.0, spread: float = 6.0) -> int:
    base = (50 + 50 * section.energy) * scale
    return int(np.clip(base + rng.normal(0, spread), 20, 127))


def _bar_rhythm(template: tuple[tuple[float, float], ...], beats_per_bar: int) -> list[tuple[float, float]]:
    return [(p, min(d, beats_per_bar - p)) for p, d in template if p < beats_per_bar]


def _bass_root(chord: Chord, previous: int | None) -> int:
    target = BASS_CENTRE if previous is None else 0.6 * previous + 0.4 * BASS_CENTRE
    return nearest_pitch(chord.root, target, BASS_LOW, BASS_HIGH - 7)


def _approach(target: int, rng: np.random.Generator) -> int:
    """A note leading into `target`: a semitone below/above or the fifth below."""
    return target + int(rng.choice([-1, 1, -5, -2]))


def _final_hit(
    section: SectionPlan, beats_per_bar: int, make: Callable[[Chord], list[int]], vel: int
) -> list[BeatNote]:
    """The last bar of an ending song: the tonic struck once and left to ring."""
    span = section.chords[-1]
    return [BeatNote(span.start_beat, beats_per_bar * 2.0, p, vel) for p in make(span.chord)]


def bass_line(
    arrangement: Arrangement, style: str, kick_steps: str | None, rng: np.random.Generator
) -> list[BeatNote]:
    """The bass part for the whole song in `style` (one of BASS_STYLES).

    kick_steps: the drum groove's kick step string ("x..x…", sixteenths), which "follow_kick"
    and "sub" lock to.
    """
    bpb = arrangement.beats_per_bar
    notes: list[BeatNote] = []
    previous: int | None = None
    motif = _bass_motif(style, bpb, rng)
    for section in arrangement.sections:
        if not section.bass:
            continue
        spans = section.chords[:-1] if section.final else section.chords
        for k, span in enumerate(spans):
            chord = span.chord
            root = _bass_root(chord, previous)
            previous = root
            fifth = root + (chord.intervals[2] - 12 if root + chord.intervals[2] > BASS_HIGH else chord.intervals[2])
            octave = root + 12 if root + 12 <= BASS_HIGH + 7 else root
            nxt = spans[k + 1].chord if k + 1 < len(spans) else None
            length = span.end_beat - span.start_beat
            events: list[tuple[float, float, int, float]] = []  # (offset, duration, pitch, velocity scale)
            if style == "walking":
                n = round(length)
                line = [root]
                tones = [root + i for i in chord.intervals[1:4]] + [octave]
                for i in range(1, n):
                    if i == n - 1 and nxt is not None:
                        line.append(_approach(_bass_root(nxt, root), rng))
                    else:
                        cand = [t for t in tones if abs(t - line[-1]) <= 7] or tones
                        line.append(int(rng.choice(cand)))
                events = [(float(i), 0.95, p, 0.9 if i % 2 == 0 else 0.8) for i, p in enumerate(line)]
            elif style in ("follow_kick", "sub") and kick_steps:
                hits = [i / 4 for i, c in enumerate(kick_steps[: bpb * 4]) if c != "."]
                hits = [h for h in hits if h < length] or [0.0]
                if 0.0 not in hits:
                    hits.insert(0, 0.0)
                for j, h in enumerate(hits):
                    end = hits[j + 1] if j + 1 < len(hits) else length
                    pitch = root if style == "sub" or rng.random() < 0.8 else int(rng.choice([fifth, octave]))
                    events.append((h, (end - h) * (0.95 if style == "sub" else 0.85), pitch, 1.0 if h == 0 else 0.85))
            elif style == "ballad":
                if length >= 4 and rng.random() < 0.5:
                    events = [(0.0, length / 2, root, 1.0), (length / 2, length / 2 * 0.95, fifth, 0.85)]
                else:
                    events = [(0.0, length * 0.97, root, 1.0)]
                if nxt is not None and length >= 2 and rng.random() < 0.3:
                    events[-1] = (events[-1][0], events[-1][1] - 1, events[-1][2], events[-1][3])
                    events.append((length - 1, 0.95, _approach(_bass_root(nxt, root), rng), 0.8))
            else:
                for off, dur, degree, vscale in motif:
                    pos = off
                    while pos < length:
                        pitch = {"r": root, "5": fifth, "8": octave, "b7": root + 10,
                                 "3": root + chord.intervals[1]}[degree]
                        events.append((pos, min(dur, length - pos), pitch, vscale))
                        pos += bpb if bpb <= length else length
                if style == "roots8" and nxt is not None and rng.random() < 0.4 and events:
                    last = max(events, key=lambda e: e[0])
                    events.remove(last)
                    events.append((last[0], last[1], _approach(_bass_root(nxt, root), rng), last[3]))
            for off, dur, pitch, vscale in events:
                if off >= length or dur <= 0.02:
                    continue
                notes.append(BeatNote(span.start_beat + off, dur, int(np.clip(pitch, BASS_LOW - 4, BASS_HIGH + 7)),
                                      _velocity(section, rng, vscale)))
        if section.final:
            root = _bass_root(section.chords[-1].chord, previous)
            notes += _final_hit(section, bpb, lambda c, r=root: [r], _velocity(section, rng))
    return notes


def _bass_motif(style: str, beats_per_bar: int, rng: np.random.Generator) -> list[tuple[float, float, str, float]]:
    """One bar of (offset, duration, degree, velocity scale) for the pattern-based styles."""
    if style == "roots8":
        return [(i / 2, 0.45, "r", 1.0 if i % 2 == 0 else 0.8) for i in range(beats_per_bar * 2)]
    if style == "octave":
        return [(i / 2, 0.4, "r" if i % 2 == 0 else "8", 1.0 if i % 2 == 0 else 0.85) for i in range(beats_per_bar * 2)]
    if style == "offbeat":
        return [(i + 0.5, 0.4, "r" if rng.random() < 0.8 else "8", 0.95) for i in range(beats_per_bar)]
    if style == "pulse16":
        return [(i / 4, 0.2, "r", 1.0 if i % 4 == 0 else 0.7) for i in range(beats_per_bar * 4)]
    if style == "pop":
        options = [
            [(0, 1.5, "r", 1.0), (1.5, 0.5, "r", 0.8), (2, 1, "5", 0.9), (3, 1, "8", 0.85)],
            [(0, 0.75, "r", 1.0), (0.75, 0.75, "r", 0.8), (1.5, 1, "5", 0.85), (2.5, 0.5, "r", 0.8), (3, 1, "r", 0.9)],
            [(0, 2, "r", 1.0), (2, 1.5, "r", 0.9), (3.5, 0.5, "5", 0.8)],
        ]
        return [e for e in options[int(rng.integers(len(options)))] if e[0] < beats_per_bar]
    if style == "funk":
        steps = [0] + [i for i in range(1, beats_per_bar * 4) if rng.random() < 0.42]
        degrees = ["r", "8", "b7", "5", "r", "r"]
        out = []
        for i in steps:
            ghost = rng.random() < 0.2 and i != 0
            out.append((i / 4, 0.12 if ghost else 0.22, "r" if i == 0 else str(rng.choice(degrees)),
                        0.45 if ghost else (1.0 if i % 4 == 0 else 0.85)))
        return out
    if style == "reggae":
        steps = sorted({2, 4, 6} | {i for i in range(7, beats_per_bar * 4) if rng.random() < 0.3})
        degrees = ["r", "3", "5", "8", "r"]
        return [(i / 4, 0.55 if j % 2 == 0 else 0.4, str(rng.choice(degrees)) if j else "r", 0.9)
                for j, i in enumerate(steps)]
    # "follow_kick"/"sub" without a kick pattern fall back to roots on the beat
    return [(float(i), 0.9, "r", 1.0 if i == 0 else 0.85) for i in range(beats_per_bar)]


def other_part(
    arrangement: Arrangement,
    role: str,
    program: int,
    rhythm: str,
    rng: np.random.Generator,
) -> list[BeatNote]:
    """The notes of one "other" part playing `role` wherever the arrangement lets it."""
    bpb = arrangement.beats_per_bar
    key = arrangement.key
    notes: list[BeatNote] = []
    lo, hi = REGISTERS["power" if rhythm == "power8" else role]
    voices = 3 if program in GUITARS else 4
    previous: list[int] | None = None
    arp_step = 0.25 if rng.random() < 0.45 else 0.5
    arp_shape = str(rng.choice(["up", "updown", "down", "alberti"]))
    riff = sorted({(int(rng.integers(0, bpb * 2)) / 2, int(rng.choice([0, 2, 4, 7, 9, 12])))
                   for _ in range(int(rng.integers(3, 7)))})
    melody_prev = float((lo + hi) / 2)
    for section in arrangement.sections:
        if role not in section.other_roles:
            continue
        scale = 0.75 if role == "pad" else (0.85 if role in ("arp", "counter") else 1.0)
        spans = section.chords[:-1] if section.final else section.chords
        for span in spans:
            chord, length = span.chord, span.end_beat - span.start_beat
            if role == "pad" or (role == "comp" and rhythm == "whole"):
                previous = voice_chord(chord, lo, hi, voices, previous)
                for p in previous:
                    notes.append(BeatNote(span.start_beat, length * 0.98, p, _velocity(section, rng, scale, 4)))
            elif role in ("comp", "riff") and rhythm != "arp_up" and not (role == "riff" and program not in GUITARS):
                template = COMP_RHYTHMS[rhythm if role == "comp" else "power8"]
                if rhythm == "power8" or (role == "riff" and program in (29, 30)):
                    r = nearest_pitch(chord.root, 47, 40, 52)
                    shape = [r, r + 7, r + 12]
                else:
                    rootless = program in (0, 26) and rng.random() < 0.3  # jazz piano/guitar voicings
                    previous = voice_chord(chord, lo, hi, voices, previous, with_root=not rootless)
                    shape = previous
                bar_start = span.start_beat - (span.start_beat % bpb)
                for bar in np.arange(bar_start, span.end_beat, bpb):
                    for pos, dur in _bar_rhythm(template, bpb):
                        t = bar + pos
                        if span.start_beat - 1e-6 <= t < span.end_beat:
                            accent = 1.0 if pos % 1 == 0 else 0.85
                            if rhythm == "bubble":
                                accent = 0.7 if pos % 1 == 0 else 0.9
                                chosen = shape[:1] if pos % 1 == 0 else shape[1:]
                            else:
                                chosen = shape
                            strum = 0.012 if program in GUITARS else 0.0
                            for j, p in enumerate(chosen):
                                notes.append(BeatNote(t + j * strum, min(dur, span.end_beat - t), p,
                                                      _velocity(section, rng, accent * (0.95 if j else 1.0))))
            elif role == "riff":
                for bar in np.arange(span.start_beat - span.start_beat % bpb, span.end_beat, bpb):
                    for pos, interval in riff:
                        t = bar + pos
                        if span.start_beat <= t < span.end_beat:
                            pitch = nearest_pitch((chord.root + interval) % 12, (lo + hi) / 2 - 4, lo, hi)
                            notes.append(BeatNote(t, 0.45, pitch, _velocity(section, rng, 0.95)))
            elif role == "arp" or rhythm == "arp_up":
                pool = [p for p in scale_pitches(chord.pitch_classes, lo, hi)][:7]
                if arp_shape == "down":
                    pool = pool[::-1]
                elif arp_shape == "updown":
                    pool = pool + pool[-2:0:-1]
                elif arp_shape == "alberti" and len(pool) >= 3:
                    pool = [pool[0], pool[2], pool[1], pool[2]]
                n = round(length / arp_step)
                for i in range(n):
                    notes.append(BeatNote(span.start_beat + i * arp_step, arp_step * 1.6, pool[i % len(pool)],
                                          _velocity(section, rng, scale * (1.0 if i % 4 == 0 else 0.85))))
            elif role in ("counter", "lead"):
                step = 2.0 if role == "counter" else float(rng.choice([0.5, 1.0, 1.0, 0.5]))
                t = span.start_beat
                while t < span.end_beat - 1e-6:
                    lengths = [0.5, 1.0, 1.5, 2.0] if step == 1.0 else [0.5, 0.5, 1.0]
                    dur = step if role == "counter" else float(rng.choice(lengths))
                    dur = min(dur, span.end_beat - t)
                    strong = (t % 1) == 0
                    pcs = chord.pitch_classes if strong else chord_scale(chord, key)
                    cands = scale_pitches(pcs, lo, hi)
                    target = melody_prev + rng.normal(0, 2.5)
                    pitch = min(cands, key=lambda p: abs(p - target))
                    if role == "lead" and rng.random() < 0.12:
                        t += dur  # a rest
                        continue
                    notes.append(BeatNote(t, dur * 0.95, pitch, _velocity(section, rng, scale)))
                    melody_prev = 0.8 * pitch + 0.2 * (lo + hi) / 2
                    t += dur
        if section.final:
            last_voicing, last_pitch = previous, melody_prev
            if role == "lead":
                def make(c: Chord, p: float = last_pitch) -> list[int]:
                    return [nearest_pitch(c.root, p, lo, hi)]
            else:
                def make(c: Chord, v: list[int] | None = last_voicing) -> list[int]:
                    return voice_chord(c, lo, hi, voices, v)
            notes += _final_hit(section, bpb, make, _velocity(section, rng, scale))
    return notes
