"""The score of one synthetic song: what every stem plays, in seconds, before any audio exists.

`compose` builds a `Song` from a seed; `render` turns it into audio. Everything here is a frozen
dataclass of plain numbers and strings, so a Song pickles cheaply to a worker process and is
written to song.json as it is.

Composition works in beats; `TimeGrid` maps beats to seconds (tempo and swing), so a part is
written straight and played with the song's feel.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TimeGrid:
    """Beats → seconds for one song.

    tempo_bpm: quarter-note beats per minute.
    swing: share of a swung pair taken by its first note (0.5 straight, 2/3 triplet swing).
    swing_unit: the swung note value in beats (0.5 = swung eighths, 0.25 = swung sixteenths).
    """

    tempo_bpm: float
    swing: float = 0.5
    swing_unit: float = 0.5

    @property
    def beat_s(self) -> float:
        return 60.0 / self.tempo_bpm

    def seconds(self, beat: float) -> float:
        """Time in seconds of a position in beats (swing moves the off-beats late)."""
        if self.swing == 0.5:
            return beat * self.beat_s
        pair = 2.0 * self.swing_unit
        n, pos = divmod(beat, pair)
        if pos < self.swing_unit:
            pos = pos / self.swing_unit * self.swing * pair
        else:
            pos = self.swing * pair + (pos - self.swing_unit) / self.swing_unit * (1.0 - self.swing) * pair
        return (n * pair + pos) * self.beat_s


@dataclass(frozen=True)
class Note:
    """A pitched note. Times in seconds from the song start; pitch MIDI; velocity 1..127."""

    start_s: float
    end_s: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Part:
    """An instrument part rendered with FluidSynth into one stem.

    stem: "bass", "other" or "vocals" (GM choir pads only ever back a sung lead).
    role: what it plays ("comp", "pad", "arp", "riff", "counter", "lead", "bass" …).
    soundfont: index into the song's soundfont list; bank/program: the GM preset.
    pan: -1 (left) … +1 (right), applied in production.
    """

    name: str
    stem: str
    role: str
    soundfont: int
    bank: int
    program: int
    notes: tuple[Note, ...]
    pan: float = 0.0


@dataclass(frozen=True)
class Hit:
    """One drum hit: time in seconds, kit piece ("kick", "snare", "hat_closed" …), velocity 0..1."""

    time_s: float
    piece: str
    velocity: float


@dataclass(frozen=True)
class DrumPart:
    """A drum or percussion part in the drums stem.

    source: "gm" (FluidSynth percussion channel: soundfont, bank 128, program = kit) or
    "hydrogen" (recorded samples of the Hydrogen kit named `kit`, sequenced by us).
    """

    name: str
    source: str
    kit: str
    hits: tuple[Hit, ...]
    soundfont: int = 0
    program: int = 0


@dataclass(frozen=True)
class SungNote:
    """One sung note. word: what is sung on it; "" continues the previous word (melisma).

    pitch is a MIDI number; velocity 0..1 scales its loudness.
    """

    start_s: float
    end_s: float
    pitch: int
    word: str
    velocity: float


@dataclass(frozen=True)
class Phrase:
    """Notes sung in one breath, in time order; nothing of it sounds before `earliest_s`
    (its section's start: the first consonant may not reach into a section where the singer rests)."""

    notes: tuple[SungNote, ...]
    earliest_s: float = 0.0

    @property
    def start_s(self) -> float:
        return self.notes[0].start_s

    @property
    def end_s(self) -> float:
        return self.notes[-1].end_s


@dataclass(frozen=True)
class Singer:
    """Who sings and how.

    voice: espeak-ng voice, e.g. "en-us+f3"; language: the lyric language ("en", "es" …).
    style: "sung" (notes with vibrato) or "rap" (speech melody moved to a pitch centre).
    formant_shift: scales the spectral envelope's frequency axis (<1 darker, >1 brighter).
    vibrato_hz / vibrato_st: vibrato rate and depth (semitones, peak); scoop_st: onset scoop.
    glide_s: portamento time between legato notes; tightness_s: timing spread.
    """

    voice: str
    language: str
    gender: str
    style: str
    formant_shift: float
    vibrato_hz: float
    vibrato_st: float
    scoop_st: float
    glide_s: float
    tightness_s: float
    breathiness: float


@dataclass(frozen=True)
class VocalPart:
    """Everything in the vocals stem that is sung.

    lead: the melody; harmonies: extra voices (a third or sixth above, or a double) with pan
    and level; breaths: (start_s, duration_s) of audible breaths before phrases.
    """

    singer: Singer
    lead: tuple[Phrase, ...]
    harmonies: tuple[tuple[Phrase, float, float], ...] = ()  # (phrase, pan, gain_db)
    breaths: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Section:
    """A song section: name, span in seconds, bars, chords (one Roman symbol per chord change),
    energy 0..1, and the stems that play in it (sorted in STEMS order)."""

    name: str
    start_s: float
    end_s: float
    bars: int
    chords: tuple[str, ...]
    energy: float
    stems: tuple[str, ...]


@dataclass(frozen=True)
class Song:
    """A composed song, ready to render.

    seconds: exact length of every rendered stem; sections cover 0 … seconds.
    parts: FluidSynth parts (bass, other, backing pads); drums: drum/percussion parts;
    vocals: the sung lead, harmonies and breaths; soundfonts: the files `Part.soundfont` indexes.
    """

    name: str
    seed: int
    index: int
    genre: str
    tempo_bpm: float
    key: str
    feel: str
    swing: float
    beats_per_bar: int
    seconds: float
    sections: tuple[Section, ...]
    parts: tuple[Part, ...]
    drums: tuple[DrumPart, ...]
    vocals: VocalPart
    soundfonts: tuple[str, ...]
    info: dict[str, object] = field(default_factory=dict, compare=False, hash=False)
