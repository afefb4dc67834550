"""Genres: the musical choices a song of each kind draws from (tempo, feel, harmony, instruments).

Only data lives here. `compose` draws from a `Genre` with the song's random generator; names in
`grooves`, `fills`, `bass_styles` and `comp_rhythms` refer to `drums.GROOVES`, `drums.FILLS`,
`parts.BASS_STYLES` and `parts.COMP_RHYTHMS`.

General MIDI programs are 0-based (0 = Acoustic Grand Piano, 32 = Acoustic Bass …).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Genre:
    """What songs of one genre are made of.

    tempo_bpm: range to draw the tempo from. feels: (feel, weight); feel is "straight",
    "shuffle" (swung eighths), "swing16" (swung sixteenths), "halftime" or "waltz" (3/4).
    swing: range of the swing ratio for swung feels. major: probability of a major key (else
    minor; `modal` names the mode a minor/major key may be replaced with).
    progressions_major / _minor: Roman-numeral progressions; harmonic_rhythm: chords per bar.
    grooves / halftime_grooves / waltz_grooves / fills: drum patterns. gm_kits: GM drum-kit
    programs; hydrogen_kits: Hydrogen kits that suit; hydrogen_share: chance to use one.
    percussion: chance of an extra percussion layer.
    bass_programs / bass_styles: GM bass programs and bass-line styles.
    comp / pad / arp / riff / counter / lead: GM program pools for the "other" roles.
    comp_rhythms: chord rhythms for the "comp" role. rap_share: chance of a rapped vocal.
    """

    name: str
    tempo_bpm: tuple[float, float]
    feels: tuple[tuple[str, float], ...]
    swing: tuple[float, float]
    major: float
    modal: str | None
    progressions_major: tuple[str, ...]
    progressions_minor: tuple[str, ...]
    harmonic_rhythm: tuple[tuple[float, float], ...]
    grooves: tuple[str, ...]
    halftime_grooves: tuple[str, ...]
    waltz_grooves: tuple[str, ...]
    fills: tuple[str, ...]
    gm_kits: tuple[int, ...]
    hydrogen_kits: tuple[str, ...]
    hydrogen_share: float
    percussion: float
    bass_programs: tuple[int, ...]
    bass_styles: tuple[str, ...]
    comp: tuple[int, ...]
    pad: tuple[int, ...]
    arp: tuple[int, ...]
    riff: tuple[int, ...]
    counter: tuple[int, ...]
    lead: tuple[int, ...]
    comp_rhythms: tuple[str, ...]
    rap_share: float = 0.0


ACOUSTIC_KITS: tuple[str, ...] = (
    "The Black Pearl 1.0", "ForzeeStereo", "BJA_Pacific", "ColomboAcousticDrumkit", "Millo_MultiLayered2",
    "Millo_MultiLayered3", "Millo-Drums_v.1", "Audiophob", "rumpf_kit_z01_h2",
)
ELECTRONIC_KITS: tuple[str, ...] = ("ElectricEmpireKit", "HardElectro1", "VariBreaks")
"""Hydrogen kits (folder names under the Debian hydrogen-drumkits data) by character."""

POP_MAJOR = ("I V vi IV", "I vi IV V", "vi IV I V", "I IV vi V", "IV I V vi", "I iii IV V", "I V IV IV",
             "I IVmaj7 vi V", "Iadd9 V vi IV")
POP_MINOR = ("i bVI bIII bVII", "i bVII bVI bVII", "i iv bVI bVII", "i bVI iv V", "vi IV I V")

GENRES: dict[str, Genre] = {
    g.name: g
    for g in (
        Genre(
            name="pop", tempo_bpm=(88, 128),
            feels=(("straight", 0.75), ("halftime", 0.1), ("shuffle", 0.15)), swing=(0.58, 0.66),
            major=0.65, modal=None,
            progressions_major=POP_MAJOR, progressions_minor=POP_MINOR,
            harmonic_rhythm=((1, 0.8), (2, 0.1), (0.5, 0.1)),
            grooves=("pop1", "pop2", "pop3", "rock1"), halftime_grooves=("half1", "half2"),
            waltz_grooves=("waltz1",), fills=("toms16", "snare16", "mixed", "snare8"),
            gm_kits=(0, 1, 2, 8, 16, 24, 25), hydrogen_kits=(*ACOUSTIC_KITS, "ElectricEmpireKit"),
            hydrogen_share=0.55, percussion=0.45,
            bass_programs=(33, 34, 38, 39, 35), bass_styles=("pop", "roots8", "octave", "follow_kick"),
            comp=(0, 1, 4, 5, 25, 27), pad=(48, 49, 50, 88, 89, 90, 91, 94), arp=(0, 4, 46, 11, 8, 10, 45, 81),
            riff=(27, 25, 4, 81), counter=(73, 80, 81, 40, 71, 11), lead=(80, 81, 73, 65, 27),
            comp_rhythms=("half", "pulse8", "pop_sync", "quarters"),
        ),
        Genre(
            name="rock", tempo_bpm=(100, 165),
            feels=(("straight", 0.75), ("halftime", 0.15), ("shuffle", 0.1)), swing=(0.6, 0.67),
            major=0.5, modal="mixolydian",
            progressions_major=("I V vi IV", "I bVII IV I", "I IV V IV", "I V IV V", "vi IV I V", "I bIII IV I"),
            progressions_minor=("i bVII bVI bVII", "i bVI bIII bVII", "i iv bVII i", "i bIII bVII iv"),
            harmonic_rhythm=((1, 0.75), (2, 0.15), (0.5, 0.1)),
            grooves=("rock1", "rock2", "rock3", "pop2"), halftime_grooves=("half1", "half2"),
            waltz_grooves=("waltz1",), fills=("toms16", "mixed", "toms8", "snare16"),
            gm_kits=(0, 8, 16, 17, 18, 1), hydrogen_kits=ACOUSTIC_KITS, hydrogen_share=0.65, percussion=0.2,
            bass_programs=(33, 34, 35, 34), bass_styles=("roots8", "octave", "follow_kick", "pop"),
            comp=(29, 30, 27, 16, 17, 18, 0), pad=(48, 49, 16, 18, 19), arp=(27, 25, 26, 0),
            riff=(29, 30, 27), counter=(30, 29, 81, 48, 16), lead=(30, 29, 81, 65),
            comp_rhythms=("power8", "pulse8", "half", "rock_sync"),
        ),
        Genre(
            name="funk", tempo_bpm=(92, 118),
            feels=(("swing16", 0.45), ("straight", 0.55)), swing=(0.54, 0.6),
            major=0.4, modal="dorian",
            progressions_major=("I7 IV7", "I7 I7 IV7 I7", "ii7 V7", "IVmaj7 iii7 ii7 I", "I7 bVII I7 IV7"),
            progressions_minor=("i7 IV7", "i7 iv7", "i7 bVII i7 IV7", "i7 bIII bVII IV7", "i7 i7 iv7 V7"),
            harmonic_rhythm=((1, 0.6), (0.5, 0.25), (2, 0.15)),
            grooves=("funk1", "funk2", "funk3", "disco"), halftime_grooves=("half2",), waltz_grooves=("waltz1",),
            fills=("snare16", "mixed", "toms16"),
            gm_kits=(0, 1, 8, 9, 24, 25), hydrogen_kits=(*ACOUSTIC_KITS, "VariBreaks"), hydrogen_share=0.6,
            percussion=0.6,
            bass_programs=(33, 36, 37, 34, 38), bass_styles=("funk", "octave", "funk"),
            comp=(28, 27, 7, 4, 5, 16), pad=(48, 89, 16, 61), arp=(7, 4, 28),
            riff=(28, 27, 7), counter=(61, 62, 56, 66, 65), lead=(66, 65, 56, 81, 17),
            comp_rhythms=("funk16", "stabs", "offbeat8"),
        ),
        Genre(
            name="electronic", tempo_bpm=(116, 132),
            feels=(("straight", 0.9), ("swing16", 0.1)), swing=(0.54, 0.58),
            major=0.35, modal=None,
            progressions_major=("I V vi IV", "vi IV I V", "IV V vi vi", "I I IV IV"),
            progressions_minor=("i bVI bIII bVII", "i bVII bVI bVII", "i i bVI bVII", "i iv bVI V", "i bIII bVII iv"),
            harmonic_rhythm=((1, 0.55), (0.5, 0.4), (2, 0.05)),
            grooves=("house1", "house2", "house3", "synthpop", "breakbeat"), halftime_grooves=("half2",),
            waltz_grooves=("waltz1",), fills=("roll", "snare16", "clap8", "none"),
            gm_kits=(24, 25, 16, 0), hydrogen_kits=ELECTRONIC_KITS, hydrogen_share=0.55, percussion=0.5,
            bass_programs=(38, 39, 38, 39, 33, 34), bass_styles=("offbeat", "octave", "roots8", "pulse16"),
            comp=(0, 1, 4, 62, 81, 90), pad=(88, 89, 90, 91, 92, 94, 95, 50, 51, 99), arp=(81, 80, 84, 98, 45, 8),
            riff=(81, 80, 62, 87), counter=(80, 81, 82, 83, 86, 62), lead=(80, 81, 82, 83, 84, 86),
            comp_rhythms=("house_stab", "offbeat8", "pulse8", "half"),
        ),
        Genre(
            name="ballad", tempo_bpm=(70, 86),
            feels=(("straight", 0.6), ("shuffle", 0.25), ("waltz", 0.15)), swing=(0.64, 0.67),
            major=0.65, modal=None,
            progressions_major=("I V vi IV", "I vi IV V", "IV I V vi", "I iii vi IV", "I V vi iii IV I IV V",
                                "Iadd9 IVmaj7 vi7 V"),
            progressions_minor=("i bVI bIII bVII", "i iv bVII bIII", "i bVI iv V", "vi IV I V"),
            harmonic_rhythm=((1, 0.7), (0.5, 0.2), (2, 0.1)),
            grooves=("ballad1", "ballad2", "pop1"), halftime_grooves=("half1",), waltz_grooves=("waltz1", "waltz2"),
            fills=("toms8", "snare8", "toms16", "none"),
            gm_kits=(0, 8, 40, 41, 32, 48), hydrogen_kits=ACOUSTIC_KITS, hydrogen_share=0.55, percussion=0.25,
            bass_programs=(33, 32, 35, 34), bass_styles=("ballad", "ballad", "pop"),
            comp=(0, 1, 24, 25, 4, 46), pad=(48, 49, 89, 88, 50), arp=(0, 46, 24, 11, 25, 10),
            riff=(24, 25, 0), counter=(73, 40, 42, 68, 71, 69, 48), lead=(73, 40, 68, 71, 0),
            comp_rhythms=("whole", "half", "arp_up", "quarters"),
        ),
        Genre(
            name="hiphop", tempo_bpm=(80, 98),
            feels=(("swing16", 0.55), ("straight", 0.25), ("halftime", 0.2)), swing=(0.54, 0.62),
            major=0.3, modal="dorian",
            progressions_major=("I vi", "I IV", "IVmaj7 iii7 vi7 vi7", "I iii IV iv"),
            progressions_minor=("i bVI", "i iv", "i7 iv7", "i bVI bIII bVII", "i i bVI V", "i7 bVII bVI V"),
            harmonic_rhythm=((1, 0.5), (2, 0.4), (0.5, 0.1)),
            grooves=("boombap1", "boombap2", "boombap3"), halftime_grooves=("trap1", "trap2"),
            waltz_grooves=("waltz1",),
            fills=("none", "hatroll", "snare8", "none"),
            gm_kits=(25, 24, 0, 8, 16),
            hydrogen_kits=(*ELECTRONIC_KITS, "VariBreaks", "rumpf_kit_z01_h2", "The Black Pearl 1.0"),
            hydrogen_share=0.6, percussion=0.3,
            bass_programs=(38, 39, 33, 34, 32), bass_styles=("follow_kick", "sub", "follow_kick"),
            comp=(4, 0, 11, 27, 5), pad=(48, 89, 91, 95, 49), arp=(10, 8, 11, 46, 14, 4),
            riff=(4, 11, 0, 10), counter=(73, 80, 40, 48, 71), lead=(73, 80, 40, 11),
            comp_rhythms=("half", "whole", "stabs"),
            rap_share=0.55,
        ),
        Genre(
            name="reggae", tempo_bpm=(72, 96),
            feels=(("shuffle", 0.45), ("straight", 0.55)), swing=(0.56, 0.62),
            major=0.55, modal=None,
            progressions_major=("I IV", "I V IV V", "I vi IV V", "IV V I I", "ii V I I"),
            progressions_minor=("i iv", "i bVII", "i bVI bVII i", "i iv bVII bIII"),
            harmonic_rhythm=((1, 0.7), (2, 0.25), (0.5, 0.05)),
            grooves=("onedrop1", "onedrop2", "steppers", "rockers"), halftime_grooves=("onedrop1",),
            waltz_grooves=("waltz1",), fills=("snare8", "toms8", "snare16"),
            gm_kits=(0, 8, 16, 24, 32), hydrogen_kits=ACOUSTIC_KITS, hydrogen_share=0.55, percussion=0.55,
            bass_programs=(33, 34, 38, 32), bass_styles=("reggae", "reggae", "roots8"),
            comp=(27, 28, 0, 16, 17), pad=(16, 17, 48, 89), arp=(16, 0, 27),
            riff=(27, 28, 16), counter=(61, 56, 57, 22, 65), lead=(22, 65, 56, 16, 80),
            comp_rhythms=("skank", "skank", "bubble"),
        ),
        Genre(
            name="jazz", tempo_bpm=(96, 180),
            feels=(("shuffle", 0.75), ("waltz", 0.15), ("straight", 0.1)), swing=(0.6, 0.68),
            major=0.6, modal=None,
            progressions_major=("ii7 V7 Imaj7 VI7", "Imaj7 vi7 ii7 V7", "iii7 VI7 ii7 V7", "Imaj7 IV7 iii7 VI7",
                                "ii7 V7 Imaj7 Imaj7"),
            progressions_minor=("iim7b5 V7 i7 i7", "i7 iv7 bVII7 bIIImaj7", "i7 VI7 iim7b5 V7"),
            harmonic_rhythm=((1, 0.6), (2, 0.4)),
            grooves=("jazz1", "jazz2"), halftime_grooves=("jazz2",), waltz_grooves=("jazzwaltz",),
            fills=("jazz", "snare8", "none"),
            gm_kits=(32, 33, 40, 41, 8), hydrogen_kits=("The Black Pearl 1.0", "Audiophob", "Millo_MultiLayered2",
                                                         "ForzeeStereo", "BJA_Pacific"),
            hydrogen_share=0.5, percussion=0.1,
            bass_programs=(32, 32, 33, 35), bass_styles=("walking", "walking", "ballad"),
            comp=(0, 26, 4, 0, 11), pad=(48, 61, 89), arp=(0, 11, 26),
            riff=(0, 26, 11), counter=(65, 66, 56, 59, 57, 11, 73), lead=(65, 66, 56, 59, 73, 11),
            comp_rhythms=("charleston", "jazz_comp", "half"),
        ),
    )
}
"""All genres by name."""

GENRE_WEIGHTS: dict[str, float] = {
    "pop": 1.4, "rock": 1.3, "funk": 0.8, "electronic": 1.0, "ballad": 0.9, "hiphop": 1.0, "reggae": 0.6, "jazz": 0.6,
}
"""How often each genre is drawn."""


AVL_RECIPE = 3
"""The first production recipe that plays some kits on the recorded AVL drum kits."""
ACOUSTIC_KIT_GENRES: frozenset[str] = frozenset({"pop", "rock", "funk", "ballad", "reggae", "jazz"})
"""Genres whose drums may be a recorded acoustic kit (from AVL_RECIPE on)."""
