"""Music theory the composer needs: keys, scales, chords written as Roman numerals, voicings.

Pitches are MIDI note numbers (60 = middle C); pitch classes are 0..11 (0 = C). A chord is written
relative to the key's tonic in Roman numerals over the *major* scale degrees, so a minor-key
progression spells its flats: "i bVI bIII bVII". Upper case = major triad, lower case = minor;
suffixes add sevenths and colours ("7", "maj7", "m7b5", "dim", "sus2", "sus4", "add9", "9", "6").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PITCH_NAMES: tuple[str, ...] = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}
"""Scales as semitones above the tonic."""

MAJOR_DEGREES: tuple[int, ...] = SCALES["major"]
"""Semitones of the Roman numerals I..VII (before any b/# accidental)."""

_NUMERALS = {"i": 0, "ii": 1, "iii": 2, "iv": 3, "v": 4, "vi": 5, "vii": 6}
_ROMAN_RE = re.compile(r"^(b|#)?(vii|iii|vi|iv|ii|v|i)(.*)$", re.IGNORECASE)

# intervals above the chord root for each suffix, for (major numeral, minor numeral)
_SUFFIX_INTERVALS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "": ((0, 4, 7), (0, 3, 7)),
    "7": ((0, 4, 7, 10), (0, 3, 7, 10)),
    "maj7": ((0, 4, 7, 11), (0, 3, 7, 11)),
    "6": ((0, 4, 7, 9), (0, 3, 7, 9)),
    "9": ((0, 4, 7, 10, 14), (0, 3, 7, 10, 14)),
    "add9": ((0, 4, 7, 14), (0, 3, 7, 14)),
    "sus2": ((0, 2, 7), (0, 2, 7)),
    "sus4": ((0, 5, 7), (0, 5, 7)),
    "dim": ((0, 3, 6), (0, 3, 6)),
    "m7b5": ((0, 3, 6, 10), (0, 3, 6, 10)),
}


@dataclass(frozen=True)
class Key:
    """A key: tonic pitch class 0..11 and a scale name from SCALES."""

    tonic: int
    mode: str

    @property
    def scale(self) -> tuple[int, ...]:
        """Pitch classes of the scale, tonic first."""
        return tuple((self.tonic + s) % 12 for s in SCALES[self.mode])

    @property
    def name(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"


@dataclass(frozen=True)
class Chord:
    """A chord: root pitch class, intervals above the root in semitones, and its Roman symbol."""

    root: int
    intervals: tuple[int, ...]
    symbol: str

    @property
    def pitch_classes(self) -> tuple[int, ...]:
        """Chord tones as pitch classes, root first (duplicates removed, order kept)."""
        seen: list[int] = []
        for i in self.intervals:
            pc = (self.root + i) % 12
            if pc not in seen:
                seen.append(pc)
        return tuple(seen)

    @property
    def triad(self) -> tuple[int, ...]:
        """Root, third (or suspension) and fifth as pitch classes."""
        return self.pitch_classes[:3]

    @property
    def fifth(self) -> int:
        """Pitch class of the chord's fifth (perfect or diminished)."""
        return (self.root + self.intervals[2]) % 12


def parse_roman(symbol: str, key: Key) -> Chord:
    """A Roman-numeral chord in `key`: "IV", "vi7", "bVII", "V7", "iim7b5" … → Chord."""
    match = _ROMAN_RE.match(symbol)
    if match is None:
        raise ValueError(f"not a Roman-numeral chord: {symbol!r}")
    accidental, numeral, suffix = match.groups()
    degree = _NUMERALS[numeral.lower()]
    offset = MAJOR_DEGREES[degree] + {"b": -1, "#": 1, None: 0}[accidental]
    minor = numeral.islower()
    if suffix not in _SUFFIX_INTERVALS:
        raise ValueError(f"unknown chord suffix {suffix!r} in {symbol!r}")
    intervals = _SUFFIX_INTERVALS[suffix][1 if minor else 0]
    return Chord(root=(key.tonic + offset) % 12, intervals=intervals, symbol=symbol)


def midi_to_hz(pitch: float | np.ndarray) -> float | np.ndarray:
    """MIDI note number (fractional allowed) → frequency in Hz (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((np.asarray(pitch, dtype=np.float64) - 69.0) / 12.0)


def nearest_pitch(pc: int, target: float, lo: int = 0, hi: int = 127) -> int:
    """The MIDI pitch with pitch class `pc` closest to `target`, kept within [lo, hi]."""
    base = round(target) - ((round(target) - pc) % 12)
    candidates = [p for p in (base - 12, base, base + 12, base + 24) if lo <= p <= hi]
    if not candidates:
        p = base
        while p < lo:
            p += 12
        while p > hi:
            p -= 12
        return p
    return min(candidates, key=lambda p: (abs(p - target), p))


def scale_pitches(pitch_classes: Sequence[int], lo: int, hi: int) -> list[int]:
    """All MIDI pitches in [lo, hi] whose pitch class is in `pitch_classes`, ascending."""
    pcs = set(pitch_classes)
    return [p for p in range(lo, hi + 1) if p % 12 in pcs]


def chord_scale(chord: Chord, key: Key, avoid_clashes: bool = False) -> tuple[int, ...]:
    """Pitch classes a melody may use over `chord`: chord tones plus the key's scale.

    Scale notes a semitone away from a chord tone that lies outside the key (the raised
    leading tone of V in minor, a borrowed bVII …) are dropped; with `avoid_clashes`, scale
    notes a semitone from *any* chord tone are dropped too (what is safe on a strong beat:
    over I in major this leaves the major pentatonic).
    """
    tones = set(chord.pitch_classes)
    scale = set(key.scale)
    guard = tones if avoid_clashes else tones - scale
    out = set(tones)
    for pc in scale:
        if pc not in tones and any((pc - t) % 12 in (1, 11) for t in guard):
            continue
        out.add(pc)
    return tuple(sorted(out))


def voice_chord(
    chord: Chord,
    lo: int,
    hi: int,
    n_voices: int,
    previous: Sequence[int] | None = None,
    with_root: bool = True,
) -> list[int]:
    """A close voicing of `chord` with `n_voices` notes inside [lo, hi], ascending.

    With `previous` (the last voicing), the voicing that moves the voices least is chosen (voice
    leading); without it, the one nearest the middle of the range. `with_root=False` drops the
    root when there are other tones to play (rootless jazz voicings).
    """
    tones = list(chord.pitch_classes)
    if not with_root and len(tones) > 3:
        tones = tones[1:]
    # cycle the chord tones to fill n_voices (doubling from the root up)
    best: list[int] | None = None
    best_cost = float("inf")
    centre = (lo + hi) / 2
    for inversion in range(len(tones)):
        order = tones[inversion:] + tones[:inversion]
        pcs = [order[i % len(order)] for i in range(n_voices)]
        for start in range(lo, lo + 12):
            if start % 12 != pcs[0]:
                continue
            notes = [start]
            for pc in pcs[1:]:
                nxt = notes[-1] + 1
                while nxt % 12 != pc:
                    nxt += 1
                notes.append(nxt)
            if notes[-1] > hi:
                continue
            if previous is not None and len(previous) == len(notes):
                cost = float(sum(abs(a - b) for a, b in zip(notes, sorted(previous), strict=True)))
            else:
                cost = abs(float(np.mean(notes)) - centre)
            if cost < best_cost:
                best, best_cost = notes, cost
    if best is None:  # range too narrow: stack upward from lo
        best = [nearest_pitch(pc, lo + 6 + 4 * i) for i, pc in enumerate(tones[:n_voices])]
        best.sort()
    return best
