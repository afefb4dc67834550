"""Drum parts: grooves per genre, variations, fills at section ends, crashes, percussion layers.

A groove is one bar of step strings per kit piece (sixteenth-note steps); a character is a hit
and its strength: "X" accent, "x" normal, "o" softer, "g" ghost, "." rest. Swing and shuffle come
from `score.TimeGrid`, so grooves are written straight. The output is a list of `Hit`s in
seconds, with the drummer's timing and velocity spread; `render` plays them either through the
GM percussion channel (keys below) or with a recorded Hydrogen kit (`drumkits`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tuiplayer.synth.arrangement import Arrangement, SectionPlan
from tuiplayer.synth.score import Hit, TimeGrid

STEP_STRENGTH: dict[str, float] = {"X": 1.0, "x": 0.82, "o": 0.62, "g": 0.3}
"""Velocity (0..1) of each groove character."""

GM_KEYS: dict[str, tuple[int, ...]] = {
    "kick": (36, 35), "snare": (38, 40), "rim": (37,), "clap": (39,), "hat_closed": (42,), "hat_pedal": (44,),
    "hat_open": (46,), "ride": (51, 59), "ride_bell": (53,), "crash": (49, 57), "splash": (55,),
    "tom_high": (50, 48), "tom_mid": (47, 45), "tom_low": (45, 43), "tom_floor": (41, 43),
    "tambourine": (54,), "shaker": (70, 69), "cowbell": (56,), "conga_high": (62, 63), "conga_low": (64,),
    "bongo_high": (60,), "bongo_low": (61,), "clave": (75,), "snap": (39,),
}
"""General MIDI percussion keys for each piece (the first is used unless the kit varies it)."""

TOMS: tuple[str, ...] = ("tom_high", "tom_mid", "tom_low", "tom_floor")


@dataclass(frozen=True)
class Groove:
    """One bar of a drum pattern: piece → step string (len = beats_per_bar × 4)."""

    beats_per_bar: int
    steps: dict[str, str]


def _g(beats: int = 4, **steps: str) -> Groove:
    return Groove(beats, dict(steps))


GROOVES: dict[str, Groove] = {
    "pop1": _g(kick="x.......x.x.....", snare="....x.......x...", hat_closed="x.o.x.o.x.o.x.o."),
    "pop2": _g(kick="x.....x...x.....", snare="....x.......x...", hat_closed="xoxoxoxoxoxoxoxo"),
    "pop3": _g(kick="x..x..x...x.....", snare="....x.......x...", hat_closed="x.x.x.x.x.x.x...",
               hat_open="..............o."),
    "rock1": _g(kick="x.......x.x.....", snare="....X.......X...", hat_closed="x.x.x.x.x.x.x.x."),
    "rock2": _g(kick="x.x.....x.x.....", snare="....X.......X...", ride="x.o.x.o.x.o.x.o."),
    "rock3": _g(kick="x...x...x...x...", snare="....X.......X...", hat_closed="xoxoxoxoxoxoxoxo"),
    "funk1": _g(kick="x..x......x..x..", snare="....X..g.g..X..g", hat_closed="xoxoxox.xoxoxoxo",
                hat_open=".......o........"),
    "funk2": _g(kick="x.x...x...x..x..", snare="....X.g.....X.g.", hat_closed="xoxoxoxoxoxoxoxo"),
    "funk3": _g(kick="x......x.x......", snare="..g.X..g.g.gX...", hat_closed="x.x.x.x.x.x.x.x."),
    "disco": _g(kick="x...x...x...x...", snare="....x.......x...", hat_closed="x...x...x...x...",
                hat_open="..x...x...x...x."),
    "house1": _g(kick="X...X...X...X...", clap="....x.......x...", hat_open="..x...x...x...x.",
                 hat_closed="g...g...g...g..."),
    "house2": _g(kick="X...X...X...X...", snare="....x.......x...", clap="....o.......o...",
                 hat_closed="ogxgogxgogxgogxg"),
    "house3": _g(kick="X...X...X...X...", clap="....x.......x...", hat_open="..x...x...x...x.",
                 ride="o.g.o.g.o.g.o.g."),
    "synthpop": _g(kick="x.....x.x.......", snare="....x.......x...", clap="....o.......o...",
                   hat_closed="xoxoxoxoxoxoxoxo"),
    "breakbeat": _g(kick="x.x.......xx....", snare="....x..g.x..x..g", hat_closed="x.x.x.x.x.x.x.x."),
    "half1": _g(kick="x.........x.....", snare="........X.......", hat_closed="x.x.x.x.x.x.x.x."),
    "half2": _g(kick="x......x..x.....", snare="........X.......", hat_closed="xoxoxoxoxoxoxoxo"),
    "ballad1": _g(kick="x.......x.......", rim="....x.......x...", hat_closed="o.o.o.o.o.o.o.o."),
    "ballad2": _g(kick="x......xx.......", snare="....x.......x...", hat_closed="x.o.x.o.x.o.x.o."),
    "boombap1": _g(kick="x.......x.x.....", snare="....X.......X...", hat_closed="x.x.x.x.x.x.x.x."),
    "boombap2": _g(kick="x..x......x..x..", snare="....X.......X...", hat_closed="xoxoxoxoxoxoxoxo"),
    "boombap3": _g(kick="x.x.......xx....", snare="....X.......X..g", hat_closed="x.o.x.o.x.o.x...",
                   hat_open="..............o."),
    "trap1": _g(kick="x......x..x.....", clap="........X.......", hat_closed="xoxoxoxoxoxoxoxo"),
    "trap2": _g(kick="x..x......x...x.", snare="........X.......", hat_closed="x.x.x.x.xoxox.x."),
    "onedrop1": _g(kick="........x.......", rim="........x.......", hat_closed="o.x.o.x.o.x.o.x."),
    "onedrop2": _g(kick="........x.......", snare="........X.......", hat_closed="..x...x...x...x."),
    "steppers": _g(kick="x...x...x...x...", rim="........x.......", hat_closed="..x...x...x...x."),
    "rockers": _g(kick="x.......x.......", snare="....x.......x...", hat_closed="x.x.x.x.x.x.x.x.",
                  hat_open="..........o....."),
    "jazz1": _g(ride="x...x.x.x...x.x.", hat_pedal="....x.......x...", kick="g...g...g...g..."),
    "jazz2": _g(ride="x...x.xgx...x.x.", hat_pedal="....x.......x...", snare="......g.......g."),
    "waltz1": _g(3, kick="x...........", snare="....x...x...", hat_closed="x.o.x.o.x.o."),
    "waltz2": _g(3, kick="x.......o...", rim="....x...x...", hat_closed="o.o.o.o.o.o."),
    "jazzwaltz": _g(3, ride="x...x.x.x...", hat_pedal="....x...x...", kick="g..........."),
}
"""All grooves by name (see `styles.Genre.grooves`)."""

PERCUSSION_PATTERNS: dict[str, dict[str, str]] = {
    "shaker16": {"shaker": "xgogxgogxgogxgog"},
    "shaker8": {"shaker": "x.o.x.o.x.o.x.o."},
    "tamb24": {"tambourine": "....x.......x..."},
    "tamb8": {"tambourine": "x.o.x.o.x.o.x.o."},
    "congas": {"conga_high": "..x.x..x..x.x..x", "conga_low": "x.....o.x.....o."},
    "bongos": {"bongo_high": "x.o.x.oox.o.x.oo", "bongo_low": "...x.......x...."},
    "claps": {"clap": "....x.......x..."},
    "cowbell": {"cowbell": "x...x...x...x..."},
    "clave": {"clave": "x..x..x...x.x..."},
}
"""Percussion layers played over the kit (4/4; a 3/4 song uses their first 12 steps)."""


def _jitter(rng: np.random.Generator, sigma_s: float) -> float:
    return float(np.clip(rng.normal(0.0, sigma_s), -2.5 * sigma_s, 2.5 * sigma_s))


@dataclass(frozen=True)
class Drummer:
    """How this song's drummer plays: timing spread, laid-back snare, velocity spread."""

    timing_s: float
    snare_late_s: float
    velocity_spread: float


def _steps_for(groove: Groove, beats_per_bar: int) -> dict[str, str]:
    n = beats_per_bar * 4
    return {piece: (s * 2)[:n] for piece, s in groove.steps.items()}


def _bar_pattern(
    groove: Groove, beats_per_bar: int, section: SectionPlan, bar_in_section: int, rng: np.random.Generator,
    genre: str,
) -> dict[str, list[float]]:
    """One bar of hits as piece → list of per-step velocities (0 = none), with variations."""
    steps = _steps_for(groove, beats_per_bar)
    n = beats_per_bar * 4
    bar: dict[str, list[float]] = {p: [STEP_STRENGTH.get(c, 0.0) for c in s] for p, s in steps.items()}
    energy = section.energy
    # energetic sections open up the hats or move to the ride; quiet ones thin out
    if energy >= 0.85 and "hat_closed" in bar and genre in ("rock", "pop", "ballad", "reggae") and rng.random() < 0.5:
        bar["ride" if rng.random() < 0.6 else "hat_open"] = bar.pop("hat_closed")
    if section.name == "intro" and rng.random() < 0.5:
        for piece in ("snare", "clap", "rim"):
            bar.pop(piece, None)
    if energy < 0.5 and "kick" in bar and rng.random() < 0.5:
        bar["kick"] = [v if i % 8 == 0 else 0.0 for i, v in enumerate(bar["kick"])]
    if genre in ("funk", "hiphop", "rock", "pop") and "kick" in bar:
        for i in range(1, n, 2 if genre != "funk" else 1):
            if bar["kick"][i] == 0.0 and rng.random() < 0.04 + 0.04 * energy:
                bar["kick"][i] = 0.6
    if genre in ("funk", "hiphop", "jazz", "reggae"):
        snare = bar.setdefault("snare", [0.0] * n)
        for i in range(n):
            if snare[i] == 0.0 and rng.random() < (0.12 if genre == "funk" else 0.05):
                snare[i] = 0.22 + 0.1 * rng.random()
    if "hat_closed" in bar and bar_in_section % 2 == 1 and rng.random() < 0.25:
        bar.setdefault("hat_open", [0.0] * n)[n - 2] = 0.65
    lively = section.name in ("chorus", "instrumental") and genre in ("pop", "electronic")
    if lively and "clap" not in bar and rng.random() < 0.3:
        bar["clap"] = [0.7 if i % 8 == 4 else 0.0 for i in range(n)]
    # an open hat silences the closed one on the same step
    if "hat_open" in bar and "hat_closed" in bar:
        bar["hat_closed"] = [0.0 if o > 0 else c for c, o in zip(bar["hat_closed"], bar["hat_open"], strict=True)]
    return bar


def _fill(kind: str, beats: int, beats_per_bar: int, rng: np.random.Generator) -> list[tuple[float, str, float]]:
    """Hits of a fill over the last `beats` beats of a bar: (beat in bar, piece, velocity)."""
    start = beats_per_bar - beats
    out: list[tuple[float, str, float]] = []
    if kind == "none":
        return out
    if kind in ("toms16", "mixed", "snare16", "roll", "hatroll"):
        n = beats * 4
        for i in range(n):
            pos = start + i / 4
            ramp = 0.55 + 0.45 * i / max(1, n - 1)
            if kind == "toms16":
                piece = "snare" if i < n // 4 else TOMS[min(3, (i - n // 4) * 4 // max(1, n - n // 4))]
            elif kind == "mixed":
                piece = "snare" if i % 2 == 0 else TOMS[min(3, i * 4 // n)]
                if i % 4 == 0:
                    out.append((pos, "kick", 0.8))
            elif kind == "hatroll":
                m = 3 if rng.random() < 0.5 else 2  # triplet or thirty-second rolls
                out += [(pos + k / (4 * m), "hat_closed", 0.4 + 0.3 * k / m) for k in range(m)]
                continue
            else:
                piece = "snare"
            out.append((pos, piece, ramp))
        if kind == "roll":  # the electronic build: eighths, then sixteenths, then thirty-seconds
            out = [(start + i / 2, "snare", 0.35 + 0.3 * i / max(1, beats * 2)) for i in range(beats)]
            out += [(start + beats / 2 + i / 4, "snare", 0.6 + 0.4 * i / max(1, beats * 2)) for i in range(beats * 2)]
        return out
    if kind in ("toms8", "snare8", "clap8"):
        n = beats * 2
        for i in range(n):
            piece = {"snare8": "snare", "clap8": "clap"}.get(kind, TOMS[min(3, i * 4 // n)])
            out.append((start + i / 2, piece, 0.6 + 0.4 * i / max(1, n - 1)))
        return out
    if kind == "jazz":
        for pos in (start + 0.5, start + beats - 0.5):
            out.append((pos, "snare", 0.75))
            out.append((pos, "kick", 0.7))
        return out
    raise ValueError(f"unknown fill {kind!r}")


def compose_drums(
    arrangement: Arrangement,
    grid: TimeGrid,
    genre: str,
    grooves: tuple[str, ...],
    fills: tuple[str, ...],
    rng: np.random.Generator,
) -> tuple[list[Hit], Drummer, str]:
    """Hits of the kit for the whole song, and the drummer and groove name used.

    Each section uses the song's groove (energetic sections may switch to a second one); the
    last bar before a section where drums play ends with a fill, and that section starts with a
    crash and a kick. Sections without drums stay empty (no fill runs into them either).
    """
    bpb = arrangement.beats_per_bar
    usable = [g for g in grooves if GROOVES[g].beats_per_bar == bpb] or list(grooves)
    main = usable[int(rng.integers(len(usable)))]
    alt = usable[int(rng.integers(len(usable)))]
    drummer = Drummer(
        timing_s=float(rng.uniform(0.002, 0.009)),
        snare_late_s=float(rng.uniform(0.0, 0.012)) if genre in ("hiphop", "funk", "reggae") else 0.0,
        velocity_spread=float(rng.uniform(0.04, 0.1)),
    )
    fill_kind = fills[int(rng.integers(len(fills)))]
    hits: list[tuple[float, str, float]] = []  # (beat, piece, velocity)
    for section in arrangement.sections:
        if not section.drums:
            continue
        groove = GROOVES[alt if (section.energy >= 0.85 and rng.random() < 0.4) else main]
        last_bar = section.bars - 1
        for b in range(section.bars):
            bar_beat = (section.start_bar + b) * bpb
            if section.final and b == last_bar:
                hits += [(bar_beat, "crash", 0.95), (bar_beat, "kick", 0.95)]
                continue
            pattern = _bar_pattern(groove, bpb, section, b, rng, genre)
            fill: list[tuple[float, str, float]] = []
            is_end = (b == last_bar and section.next_drums) or (section.final and b == last_bar - 1)
            phrase_fill = not is_end and b % 4 == 3 and rng.random() < 0.25
            if (is_end and fill_kind != "none") or phrase_fill:
                kind = fill_kind if is_end else ("hatroll" if fill_kind == "hatroll" else "snare8")
                length = 1 if grid.tempo_bpm < 90 or not is_end else int(rng.choice([1, 2, 2, bpb]))
                if kind == "roll":
                    length = bpb
                fill = _fill(kind, length, bpb, rng)
                cut = (bpb - length) * 4
                for piece in pattern:
                    if piece not in ("hat_pedal",) and (piece != "kick" or kind not in ("mixed",)):
                        pattern[piece] = [v if i < cut else 0.0 for i, v in enumerate(pattern[piece])]
            for piece, vels in pattern.items():
                for i, v in enumerate(vels):
                    if v > 0:
                        hits.append((bar_beat + i / 4, piece, v))
            hits += [(bar_beat + pos, piece, v) for pos, piece, v in fill]
            if b == 0 and (section.start_bar > 0 or section.name != "intro"):
                crash = section.start_bar > 0 and (section.energy >= 0.6 or rng.random() < 0.5)
                if (crash and genre != "jazz") or (genre == "jazz" and rng.random() < 0.3):
                    hits.append((bar_beat, "crash", 0.9))
    return _humanize(hits, grid, drummer, rng, _section_starts(arrangement)), drummer, main


def _section_starts(arrangement: Arrangement) -> set[float]:
    return {float(s.start_bar * arrangement.beats_per_bar) for s in arrangement.sections}


def _humanize(
    hits: list[tuple[float, str, float]], grid: TimeGrid, drummer: Drummer, rng: np.random.Generator,
    section_starts: set[float],
) -> list[Hit]:
    """Hits in seconds with the drummer's timing spread; a hit on a section's first beat is never
    early (it must not reach into the section before, which may be one where the drums rest)."""
    out = []
    for beat, piece, v in sorted(hits, key=lambda h: (h[0], h[1])):
        t = grid.seconds(beat) + _jitter(rng, drummer.timing_s)
        if piece in ("snare", "clap", "rim"):
            t += drummer.snare_late_s
        if beat in section_starts:
            t = max(t, grid.seconds(beat))
        vel = float(np.clip(v * (1.0 + rng.normal(0.0, drummer.velocity_spread)), 0.05, 1.0))
        out.append(Hit(max(0.0, t), piece, vel))
    return out


def compose_percussion(
    arrangement: Arrangement, grid: TimeGrid, genre: str, rng: np.random.Generator
) -> tuple[list[Hit], str]:
    """An extra percussion layer (shaker, tambourine, congas …) in the livelier sections."""
    options = {
        "pop": ("shaker16", "tamb24", "claps", "shaker8"), "rock": ("tamb8", "tamb24", "shaker8"),
        "funk": ("congas", "cowbell", "tamb8", "shaker16", "bongos"), "electronic": ("shaker16", "claps", "tamb8"),
        "ballad": ("shaker8", "tamb24"), "hiphop": ("shaker16", "claps", "tamb24"),
        "reggae": ("bongos", "congas", "shaker8", "clave"), "jazz": ("shaker8",),
    }[genre]
    name = options[int(rng.integers(len(options)))]
    pattern = PERCUSSION_PATTERNS[name]
    bpb = arrangement.beats_per_bar
    hits: list[tuple[float, str, float]] = []
    for section in arrangement.sections:
        if not section.drums or section.final or (section.energy < 0.6 and rng.random() < 0.6):
            continue
        for b in range(section.bars):
            bar_beat = (section.start_bar + b) * bpb
            for piece, steps in pattern.items():
                for i, c in enumerate(steps[: bpb * 4]):
                    if c in STEP_STRENGTH:
                        hits.append((bar_beat + i / 4, piece, STEP_STRENGTH[c] * 0.9))
    drummer = Drummer(timing_s=float(rng.uniform(0.003, 0.008)), snare_late_s=0.0, velocity_spread=0.1)
    return _humanize(hits, grid, drummer, rng, _section_starts(arrangement)), name
