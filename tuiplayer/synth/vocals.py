"""Sung vocals from speech: espeak-ng says each word, the WORLD vocoder makes it sing.

For every word, espeak-ng renders speech (22.05 kHz), and WORLD (pyworld: DIO + StoneMask for
f0, CheapTrick for the spectral envelope, D4C for aperiodicity) splits it into pitch, formants and
noise. To sing a phrase, each word is fitted to its notes: the consonants before the first voiced
frame keep their length (and come slightly before the beat, as singers place them), the voiced
nucleus is stretched to fill the notes, the final consonants close the note. The pitch track is
replaced by the melody with glides, scoops, vibrato and drift; WORLD then synthesises at 44.1 kHz,
with the envelope continued above 11 kHz so the voice keeps some air. Breaths are band-passed
noise. Everything is mono here (n_samples,) float64; production places it in stereo.
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass

import numpy as np
import pyworld
import soundfile as sf
import soxr

from tuiplayer.errors import BadInput, TuiplayerError
from tuiplayer.synth.score import Phrase, Singer, SungNote
from tuiplayer.synth.theory import midi_to_hz

SAMPLE_RATE = 44100
FRAME_PERIOD_MS = 5.0
FRAME_S = FRAME_PERIOD_MS / 1000.0
SPEECH_RATE = 22050
"""espeak-ng's output rate; WORLD analyses words at this rate."""

N_BINS_SPEECH = 513
N_BINS_OUT = 1025
"""Envelope bins: CheapTrick at 22.05 kHz (FFT 1024) and synthesis at 44.1 kHz (FFT 2048). The
bin spacing is the same (21.5 Hz), so the first 513 bins carry over as they are."""

SILENCE_POWER = 1e-14
"""Envelope power used for silent frames (far below audibility after synthesis)."""

MAX_ONSET_ANTICIPATION_S = 0.09
"""How far at most a word's first consonants start before its note."""

SPEAK_SPEED_WPM = {"sung": 165, "rap": 200}
"""espeak-ng speaking rate (words per minute) for sung and rapped words."""

VOCALIC_DB = -20.0
VOCALIC_WINDOW = 512
"""Frames whose 100–900 Hz energy is within VOCALIC_DB of a word's loudest count as voiced."""

WORD_EDGE_DB = -30.0
"""Frames at a word's ends quieter than this (relative to its loudest) are cut."""

PERIODIC_BELOW_BIN = 186
MAX_VOWEL_APERIODICITY = 0.3
"""In voiced frames, aperiodicity below bin 186 (~4 kHz) is limited to this."""

BREATHY_FROM_BIN = 45
"""Breathiness adds noise above this envelope bin (~1 kHz)."""


@dataclass(frozen=True)
class WordAnalysis:
    """One spoken word as WORLD sees it (frames of FRAME_PERIOD_MS).

    f0: (n_frames,) Hz, 0 where unvoiced. sp: (n_frames, N_BINS_OUT) power envelope at the
    44.1 kHz geometry. ap: (n_frames, N_BINS_OUT) aperiodicity 0..1. onset / coda: the first
    voiced frame and one past the last (the nucleus). level: mean envelope power of the nucleus.
    median_f0: the speaker's median pitch over the word (Hz).
    """

    f0: np.ndarray
    sp: np.ndarray
    ap: np.ndarray
    onset: int
    coda: int
    level: float
    median_f0: float

    @property
    def n_frames(self) -> int:
        return len(self.f0)


def _extend_envelope(sp: np.ndarray, ap: np.ndarray, air_slope: float) -> tuple[np.ndarray, np.ndarray]:
    """(n, 513) envelopes at 22.05 kHz → (n, 1025) at 44.1 kHz: the top octave continues the
    9–11 kHz level with a roll-off of `air_slope` (power ∝ f^-slope) and is mostly noise."""
    n = sp.shape[0]
    freqs = np.arange(N_BINS_SPEECH, N_BINS_OUT, dtype=np.float64)
    ref = sp[:, 420:N_BINS_SPEECH].mean(axis=1, keepdims=True)
    ext_sp = ref * (freqs[None, :] / (N_BINS_SPEECH - 40)) ** (-air_slope)
    edge = ap[:, -1:]
    ext_ap = np.broadcast_to(1.0 - (1.0 - edge) * 0.3, (n, len(freqs)))
    return np.concatenate([sp, ext_sp], axis=1), np.concatenate([ap, ext_ap], axis=1)


class WordBank:
    """espeak-ng renders and WORLD analyses of words for one singer, cached by (word, speed).

    The singer's timbre is applied here, once per word: envelopes continued to 44.1 kHz with
    `air_slope`, formants moved by `formant_shift`, aperiodicity raised by `breathiness`.
    """

    def __init__(self, espeak: str, voice: str, air_slope: float = 2.2, formant_shift: float = 1.0,
                 breathiness: float = 0.0) -> None:
        self.espeak = espeak
        self.voice = voice
        self.air_slope = air_slope
        self.formant_shift = formant_shift
        self.breathiness = breathiness
        self._cache: dict[tuple[str, int], WordAnalysis] = {}

    @property
    def n_words(self) -> int:
        """How many different (word, speed) renders were made."""
        return len(self._cache)

    def speak(self, word: str, speed: int) -> np.ndarray:
        """espeak-ng's rendering of `word`: (n,) float64 at SPEECH_RATE, silence trimmed."""
        try:
            run = subprocess.run(
                [self.espeak, "-v", self.voice, "-s", str(speed), "--stdout", word],
                capture_output=True, check=False, timeout=30,
            )
        except FileNotFoundError:
            raise BadInput(f"{self.espeak}: espeak-ng not found (install the Debian package espeak-ng)") from None
        except subprocess.TimeoutExpired:  # (a word takes milliseconds: the machine is starved, or espeak hangs)
            raise TuiplayerError(f"espeak-ng did not say {word!r} within 30 s (is the machine overloaded, or was "
                                 "the job suspended?); run again (--force to replace the songs already written)"
                                 ) from None
        if run.returncode != 0 or len(run.stdout) < 100:
            message = run.stderr.decode(errors="replace").strip().splitlines()
            raise BadInput(f"espeak-ng could not say {word!r} with voice {self.voice}: "
                           f"{message[-1] if message else 'no output'}")
        audio, rate = sf.read(io.BytesIO(run.stdout), dtype="float64")
        if rate != SPEECH_RATE:
            raise BadInput(f"espeak-ng wrote {rate} Hz audio, expected {SPEECH_RATE} Hz")
        audio = audio if audio.ndim == 1 else audio.mean(axis=1)
        loud = np.flatnonzero(np.abs(audio) > 1e-3 * max(1e-9, float(np.abs(audio).max())))
        if len(loud) == 0:
            return np.zeros(SPEECH_RATE // 10)
        pad = int(0.01 * SPEECH_RATE)
        return audio[max(0, loud[0] - pad): loud[-1] + pad]

    def analyse(self, word: str, speed: int) -> WordAnalysis:
        """WORLD analysis of the spoken word (cached)."""
        key = (word, speed)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        x = self.speak(word, speed)
        f0, t = pyworld.dio(x, SPEECH_RATE, f0_floor=60.0, f0_ceil=600.0, frame_period=FRAME_PERIOD_MS)
        f0 = _fill_vocalic(x, pyworld.stonemask(x, f0, t, SPEECH_RATE), t)
        sp = pyworld.cheaptrick(x, f0, t, SPEECH_RATE, fft_size=1024)
        ap = pyworld.d4c(x, f0, t, SPEECH_RATE, fft_size=1024)
        # drop the faint lead-in and fade-out espeak-ng leaves around a word (they would sound
        # as gaps between sung words); real consonants are louder than WORD_EDGE_DB
        energy = sp.sum(axis=1)
        loud = np.flatnonzero(energy > energy.max() * 10 ** (WORD_EDGE_DB / 10))
        first, last = int(loud[0]), int(loud[-1]) + 1
        f0, sp, ap = f0[first:last], sp[first:last], ap[first:last]
        voiced = np.flatnonzero(f0 > 0)
        if len(voiced) == 0:  # a whispered or unvoiced word: treat its loudest part as the nucleus
            energy = sp.sum(axis=1)
            peak = int(np.argmax(energy))
            onset, coda = max(0, peak - 2), min(len(f0), peak + 3)
            f0 = f0.copy()
            f0[onset:coda] = 150.0
        else:
            onset, coda = int(voiced[0]), int(voiced[-1]) + 1
        # sung vowels are clearer than espeak-ng's breathy ones: limit the noise below ~4 kHz
        voiced_rows = f0 > 0
        ap[voiced_rows, :PERIODIC_BELOW_BIN] = np.minimum(ap[voiced_rows, :PERIODIC_BELOW_BIN], MAX_VOWEL_APERIODICITY)
        sp44, ap44 = _extend_envelope(sp, ap, self.air_slope)
        sp44 = _warp_formants(sp44, self.formant_shift)
        ap44 = _warp_formants(ap44, self.formant_shift)
        if self.breathiness > 0:
            high = ap44[:, BREATHY_FROM_BIN:]
            ap44[:, BREATHY_FROM_BIN:] = high + (1.0 - high) * self.breathiness
        level = float(sp[onset:coda, :200].sum(axis=1).mean())
        median = float(np.median(f0[f0 > 0]))
        analysis = WordAnalysis(f0, sp44, ap44, onset, coda, max(level, 1e-12), median)
        self._cache[key] = analysis
        return analysis


def _fill_vocalic(x: np.ndarray, f0: np.ndarray, times: np.ndarray) -> np.ndarray:
    """f0 (n_frames,) with gaps filled where the frame is plainly vocal.

    DIO calls some frames of espeak-ng's vowels and nasals unvoiced; sung, they would turn to
    noise. A frame whose 100–900 Hz energy is within VOCALIC_DB of the word's loudest is voiced
    (vowels, nasals, liquids; not fricatives or stop bursts): its f0 is interpolated.
    """
    n = len(f0)
    window = np.hanning(VOCALIC_WINDOW)
    centres = np.clip((times * SPEECH_RATE).astype(int), 0, len(x) - 1)
    padded = np.pad(x, VOCALIC_WINDOW // 2)
    frames = np.stack([padded[c:c + VOCALIC_WINDOW] for c in centres]) * window
    freqs = np.fft.rfftfreq(VOCALIC_WINDOW, 1.0 / SPEECH_RATE)
    band = (freqs >= 100) & (freqs <= 900)
    low = (np.abs(np.fft.rfft(frames, axis=1))[:, band] ** 2).sum(axis=1)
    vocalic = low > low.max() * 10 ** (VOCALIC_DB / 10)
    voiced = f0 > 0
    if not voiced.any():
        return f0
    fill = vocalic & ~voiced
    if not fill.any():
        return f0
    known = np.flatnonzero(voiced)
    out = f0.copy()
    out[fill] = np.interp(np.flatnonzero(fill), known, f0[known])
    return out[:n]


def _frame_map(word: WordAnalysis, n_target: int) -> np.ndarray:
    """Fractional source frame for each of n_target output frames (consonants kept, vowel stretched).

    Returns (n_target,) float64 indices into the word's frames.
    """
    n_src = word.n_frames
    onset_src, coda_src = word.onset, word.n_frames - word.coda
    onset = min(onset_src, int(0.4 * n_target))
    coda = min(coda_src, int(0.3 * n_target))
    nucleus = n_target - onset - coda
    nuc_src = word.coda - word.onset
    if nucleus < 2 or nuc_src < 1:
        return np.linspace(0, n_src - 1, n_target)
    parts = []
    if onset:
        parts.append(np.linspace(0, onset_src - 1e-6, onset, endpoint=False) if onset_src else np.zeros(onset))
    edge = min(4, nuc_src // 3)
    if nucleus >= 2 * edge + 2 and edge > 0:
        head = word.onset + np.arange(edge, dtype=np.float64)
        tail = word.coda - edge + np.arange(edge, dtype=np.float64)
        middle = np.linspace(word.onset + edge, word.coda - edge - 1, nucleus - 2 * edge)
        parts += [head, middle, tail]
    else:
        parts.append(np.linspace(word.onset, word.coda - 1, nucleus))
    if coda:
        parts.append(np.linspace(word.coda, n_src - 1, coda))
    return np.concatenate(parts)[:n_target]


def _take(frames: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Rows of `frames` (n, bins) at fractional `index` (m,), linearly interpolated → (m, bins)."""
    i0 = np.clip(np.floor(index).astype(int), 0, len(frames) - 1)
    i1 = np.clip(i0 + 1, 0, len(frames) - 1)
    w = (index - i0)[:, None]
    return frames[i0] * (1.0 - w) + frames[i1] * w


def _warp_formants(env: np.ndarray, factor: float) -> np.ndarray:
    """Scale the frequency axis of envelopes (n, bins) by `factor` (>1 moves formants up)."""
    if abs(factor - 1.0) < 1e-3:
        return env
    bins = env.shape[1]
    src = np.clip(np.arange(bins) / factor, 0, bins - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, bins - 1)
    w = src - i0
    return env[:, i0] * (1.0 - w) + env[:, i1] * w


def _units(phrase: Phrase) -> list[tuple[str, list[SungNote]]]:
    """Group notes into words: a note with word "" continues the previous word."""
    units: list[tuple[str, list[SungNote]]] = []
    for note in phrase.notes:
        if note.word or not units:
            units.append((note.word or "oh", [note]))
        else:
            units[-1][1].append(note)
    return units


def _pitch_track(
    notes: list[SungNote], t0: float, n_frames: int, singer: Singer, rng: np.random.Generator
) -> np.ndarray:
    """The sung pitch (MIDI, fractional) for every frame of a phrase starting at t0 seconds.

    Notes hold their pitch; legato steps glide over `singer.glide_s`; a note after a rest scoops
    up from below; vibrato fades in after the first ~0.2 s of a note; slow drift wanders a few
    cents. Returns (n_frames,) float64.
    """
    times = t0 + np.arange(n_frames) * FRAME_S
    track = np.full(n_frames, float(notes[0].pitch))
    vib_depth = np.zeros(n_frames)
    for i, note in enumerate(notes):
        start = note.start_s
        end = notes[i + 1].start_s if i + 1 < len(notes) else times[-1] + FRAME_S
        inside = (times >= start) & (times < end)
        track[inside] = note.pitch
        age = times[inside] - start
        length = note.end_s - note.start_s
        depth = singer.vibrato_st * (1.0 if length > 0.45 else 0.35)
        vib_depth[inside] = depth * np.clip((age - 0.18) / 0.3, 0.0, 1.0)
        gap_before = start - notes[i - 1].end_s if i else 1.0
        if i and gap_before < 0.05 and notes[i - 1].pitch != note.pitch:
            # legato: glide from the previous pitch, centred a little before the note
            glide = singer.glide_s
            sel = (times >= start - glide * 0.6) & (times < start + glide * 0.4)
            x = np.clip((times[sel] - (start - glide * 0.6)) / glide, 0.0, 1.0)
            smooth = x * x * (3 - 2 * x)
            track[sel] = notes[i - 1].pitch + (note.pitch - notes[i - 1].pitch) * smooth
        elif singer.scoop_st > 0 and rng.random() < 0.6:
            sel = (times >= start) & (times < start + 0.09)
            x = np.clip((times[sel] - start) / 0.09, 0.0, 1.0)
            track[sel] -= singer.scoop_st * (1.0 - x) ** 2
    phase = float(rng.uniform(0, 2 * np.pi))
    rate = singer.vibrato_hz * (1.0 + 0.04 * np.sin(2 * np.pi * 0.3 * times + phase))
    vibrato = vib_depth * np.sin(2 * np.pi * np.cumsum(rate) * FRAME_S + phase)
    knots = np.arange(0, n_frames + 50, 50)  # a new drift target every 0.25 s, joined smoothly
    drift = np.interp(np.arange(n_frames), knots, rng.normal(0.0, 0.08, len(knots)))
    return track + vibrato + drift


def sing_phrase(
    phrase: Phrase, singer: Singer, bank: WordBank, rng: np.random.Generator, full_band: bool = True
) -> tuple[int, np.ndarray]:
    """Synthesise one phrase. Returns (start sample in the song, mono audio (n,) float64 at 44.1 kHz).

    full_band=False synthesises at 22.05 kHz and resamples (half the cost, nothing above
    11 kHz): good enough for backing voices.
    """
    units = _units(phrase)
    speed = SPEAK_SPEED_WPM[singer.style]
    bins = N_BINS_OUT if full_band else N_BINS_SPEECH
    words = [bank.analyse(word, speed) for word, _ in units]
    # where each word's frames go: it starts with its consonants a little before the note
    spans: list[tuple[float, float]] = []
    for (_, notes), word in zip(units, words, strict=True):
        lead_in = min(word.onset * FRAME_S, MAX_ONSET_ANTICIPATION_S) * 0.7
        start = max(notes[0].start_s - lead_in, phrase.earliest_s)
        spans.append((start, notes[-1].end_s))
    for i in range(len(spans) - 1):  # a word ends where the next one begins
        if spans[i][1] > spans[i + 1][0]:
            spans[i] = (spans[i][0], spans[i + 1][0])
    t0 = spans[0][0]
    n_frames = int(np.ceil((spans[-1][1] - t0) / FRAME_S)) + 2
    f0_src = np.zeros(n_frames)  # the spoken pitch mapped to output frames (0 = unvoiced)
    sp = np.full((n_frames, bins), SILENCE_POWER)
    ap = np.ones((n_frames, bins))
    ref_level = float(np.median([w.level for w in words]))
    for (_, notes), word, (a_s, b_s) in zip(units, words, spans, strict=True):
        a = round((a_s - t0) / FRAME_S)
        b = min(n_frames, round((b_s - t0) / FRAME_S))
        if b - a < 2:
            continue
        index = _frame_map(word, b - a)
        gain = (ref_level / word.level) ** 0.8  # even out loud and soft words (power domain)
        sp[a:b] = _take(word.sp[:, :bins], index) * gain
        ap[a:b] = _take(word.ap[:, :bins], index)
        f0_src[a:b] = word.f0[np.clip(np.round(index).astype(int), 0, word.n_frames - 1)]
        # velocity: louder notes, softer notes (power ∝ amplitude²)
        times = t0 + (a + np.arange(b - a)) * FRAME_S
        vel = np.full(b - a, notes[0].velocity)
        for n in notes[1:]:
            vel[times >= n.start_s] = n.velocity
        sp[a:b] *= (vel ** 1.5)[:, None] ** 2
    voiced = f0_src > 0
    all_notes = [n for _, ns in units for n in ns]
    if singer.style == "rap":
        centre = midi_to_hz(_pitch_track(all_notes, t0, n_frames, singer, rng))
        spoken = np.where(voiced, f0_src, words[0].median_f0)
        ratio = np.median([w.median_f0 for w in words])
        f0 = np.where(voiced, centre * (spoken / ratio) ** 0.7, 0.0)
    else:
        f0 = np.where(voiced, midi_to_hz(_pitch_track(all_notes, t0, n_frames, singer, rng)), 0.0)
    rate = SAMPLE_RATE if full_band else SPEECH_RATE
    y = pyworld.synthesize(
        np.ascontiguousarray(f0), sp, np.clip(ap, 0.0, 1.0, out=ap), rate, FRAME_PERIOD_MS,
    )
    if not full_band:
        y = soxr.resample(y, SPEECH_RATE, SAMPLE_RATE, quality="HQ")
    return round(t0 * SAMPLE_RATE), y


def breath(duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """An in-breath: band-passed noise with a swell. Returns (n,) float64, RMS about 1."""
    n = max(16, int(duration_s * SAMPLE_RATE))
    lo, hi = rng.uniform(350, 900), rng.uniform(2500, 6500)
    spectrum = np.fft.rfft(rng.normal(0.0, 1.0, n))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    # a soft band-pass: second-order slopes either side of [lo, hi]
    shape = 1.0 / (1.0 + (lo / np.maximum(freqs, 1.0)) ** 4) / (1.0 + (freqs / hi) ** 4)
    noise = np.fft.irfft(spectrum * shape, n)
    x = np.linspace(0.0, 1.0, n)
    env = np.sin(np.pi * x ** 0.7) ** 1.5
    out = noise * env
    return out / max(1e-9, float(np.sqrt(np.mean(out ** 2))))


def place(buffer: np.ndarray, start: int, audio: np.ndarray, gain: float = 1.0) -> None:
    """Add `audio` (n,) into `buffer` (m,) at `start`, cutting what falls outside."""
    if start >= len(buffer) or start + len(audio) <= 0:
        return
    a, b = max(0, start), min(len(buffer), start + len(audio))
    buffer[a:b] += gain * audio[a - start: b - start]
