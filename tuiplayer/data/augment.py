"""Random changes to the stems of a training example (DESIGN.md §6), in numpy and scipy.

A model trained on one renderer's sound learns that sound; these changes vary level, stereo
image and timbre per stem so it learns what a voice or a drum is instead. Each change is a
plain function (testable alone) with its parameters given; `draw_stem_effects` draws the
parameters for one stem from an `AugmentConfig` and a seeded `numpy.random.Generator`, and
`augment_stems` applies them to the four stems of an excerpt. The mixture is never augmented:
the caller re-makes it as the sum of the augmented stems, so mixture = Σ stems stays exact.

Order per stem: EQ (tilt, high-pass, low-pass, peak; one cascade of biquads) → saturation →
reverb → gain → channel swap → (rarely) silence.

All audio is float32 (n_samples, 2), time-first, channels-last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from scipy import signal as sps

from tuiplayer.config import SIGNAL, STEMS

Range = tuple[float, float]
"""A closed interval (low, high) a parameter is drawn from uniformly."""

MAX_FILTER_HZ_FRACTION = 0.45
"""Filter frequencies are kept below this fraction of the sample rate (Nyquist is 0.5)."""


@dataclass(frozen=True)
class AugmentConfig:
    """How often each change happens (p_*: probability per stem, or per example for p_remix)
    and the ranges its parameters are drawn from. A probability of 0 turns a change off.

    p_remix: per example, the probability that each stem comes from its own random track at
        its own random offset (otherwise all four stems come from one track at one offset).
    gain_db: per-stem gain range in dB (always applied; (0, 0) turns it off).
    p_swap: left/right channel swap.
    p_silence: the stem is replaced by silence (a song without that instrument).
    p_tilt, tilt_db, tilt_pivot_hz: spectral tilt, highs minus lows in dB, around a pivot.
    p_highpass, highpass_hz: 2nd-order Butterworth high-pass, cut-off range (log-uniform).
    p_lowpass, lowpass_hz: 2nd-order Butterworth low-pass, cut-off range (log-uniform).
    p_peak, peak_hz, peak_db, peak_q: one peaking EQ band (frequency log-uniform).
    p_saturate, drive: tanh saturation; drive is the stem's peak in units of the curve's
        knee (0.5: barely touched, 2: clearly compressed peaks).
    p_reverb, reverb_rt60_s, reverb_wet_db, reverb_predelay_s: reverb by convolution with a
        decorrelated stereo decaying-noise impulse response, added to the dry stem.
    sample_rate: the audio's rate in Hz (filter design).
    """

    p_remix: float = 0.5
    gain_db: Range = (-6.0, 6.0)
    p_swap: float = 0.5
    p_silence: float = 0.0
    p_tilt: float = 0.3
    tilt_db: Range = (-6.0, 6.0)
    tilt_pivot_hz: float = 1000.0
    p_highpass: float = 0.1
    highpass_hz: Range = (30.0, 250.0)
    p_lowpass: float = 0.1
    lowpass_hz: Range = (3000.0, 16000.0)
    p_peak: float = 0.3
    peak_hz: Range = (80.0, 8000.0)
    peak_db: Range = (-9.0, 9.0)
    peak_q: Range = (0.5, 3.0)
    p_saturate: float = 0.1
    drive: Range = (0.5, 2.0)
    p_reverb: float = 0.2
    reverb_rt60_s: Range = (0.2, 1.2)
    reverb_wet_db: Range = (-18.0, -6.0)
    reverb_predelay_s: Range = (0.0, 0.03)
    sample_rate: int = SIGNAL.sample_rate

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name.startswith("p_") and not 0.0 <= value <= 1.0:
                raise ValueError(f"{field.name} must be a probability in [0, 1]. Received: {value}")
            if isinstance(value, tuple) and not (len(value) == 2 and value[0] <= value[1]):
                raise ValueError(f"{field.name} must be a range (low, high), low <= high. Received: {value}")
        positive = ("highpass_hz", "lowpass_hz", "peak_hz", "peak_q", "drive", "reverb_rt60_s")
        for name in positive:
            if getattr(self, name)[0] <= 0:
                raise ValueError(f"{name} must be positive. Received: {getattr(self, name)}")
        if self.reverb_predelay_s[0] < 0:
            raise ValueError(f"reverb_predelay_s must be >= 0. Received: {self.reverb_predelay_s}")

    @classmethod
    def off(cls) -> AugmentConfig:
        """No change at all: stems as recorded, from one track, one offset (validation)."""
        return cls(p_remix=0.0, gain_db=(0.0, 0.0), p_swap=0.0, p_silence=0.0, p_tilt=0.0,
                   p_highpass=0.0, p_lowpass=0.0, p_peak=0.0, p_saturate=0.0, p_reverb=0.0)


DEFAULT_AUGMENT = AugmentConfig()
"""The changes used in training unless told otherwise."""


@dataclass(frozen=True)
class StemEffects:
    """The drawn changes for one stem; None (or False) where a change is not applied.

    tilt_db, highpass_hz, lowpass_hz: as in AugmentConfig.
    peak: (frequency_hz, gain_db, q).
    drive: saturation drive.
    reverb: (rt60_s, wet_db, predelay_s, ir_seed).
    """

    gain_db: float = 0.0
    swap: bool = False
    silence: bool = False
    tilt_db: float | None = None
    highpass_hz: float | None = None
    lowpass_hz: float | None = None
    peak: tuple[float, float, float] | None = None
    drive: float | None = None
    reverb: tuple[float, float, float, int] | None = None


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    return float(rng.uniform(bounds[0], bounds[1])) if bounds[0] < bounds[1] else float(bounds[0])


def _log_uniform(rng: np.random.Generator, bounds: Range) -> float:
    return math.exp(_uniform(rng, (math.log(bounds[0]), math.log(bounds[1]))))


def draw_stem_effects(config: AugmentConfig, rng: np.random.Generator) -> StemEffects:
    """Draw one stem's changes. Every draw happens whatever the outcomes (a fixed number of
    random numbers per stem), so changing one probability does not reshuffle the others."""
    coins = rng.random(8)
    gain_db = _uniform(rng, config.gain_db)
    tilt_db = _uniform(rng, config.tilt_db)
    highpass_hz = _log_uniform(rng, config.highpass_hz)
    lowpass_hz = _log_uniform(rng, config.lowpass_hz)
    peak = (_log_uniform(rng, config.peak_hz), _uniform(rng, config.peak_db), _uniform(rng, config.peak_q))
    drive = _uniform(rng, config.drive)
    reverb = (_uniform(rng, config.reverb_rt60_s), _uniform(rng, config.reverb_wet_db),
              _uniform(rng, config.reverb_predelay_s), int(rng.integers(2**31)))
    return StemEffects(
        gain_db=gain_db,
        swap=bool(coins[0] < config.p_swap),
        silence=bool(coins[1] < config.p_silence),
        tilt_db=tilt_db if coins[2] < config.p_tilt else None,
        highpass_hz=highpass_hz if coins[3] < config.p_highpass else None,
        lowpass_hz=lowpass_hz if coins[4] < config.p_lowpass else None,
        peak=peak if coins[5] < config.p_peak else None,
        drive=drive if coins[6] < config.p_saturate else None,
        reverb=reverb if coins[7] < config.p_reverb else None,
    )


# --- the changes, each alone ------------------------------------------------------------


def apply_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """audio (n, 2) × 10^(gain_db/20) → new float32 (n, 2)."""
    return audio * np.float32(10.0 ** (gain_db / 20.0))


def swap_channels(audio: np.ndarray) -> np.ndarray:
    """Left and right exchanged: (n, 2) → (n, 2) view."""
    return audio[:, ::-1]


def _clamp_hz(freq_hz: float, sample_rate: int) -> float:
    return min(freq_hz, MAX_FILTER_HZ_FRACTION * sample_rate)


def shelf_sos(freq_hz: float, gain_db: float, sample_rate: int, high: bool) -> np.ndarray:
    """A low or high shelving biquad (RBJ cookbook, slope 1) as one sos row: (1, 6) float64."""
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * _clamp_hz(freq_hz, sample_rate) / sample_rate
    cos_w0 = math.cos(w0)
    two_sqrt_a_alpha = 2.0 * math.sqrt(a) * math.sin(w0) / 2.0 * math.sqrt(2.0)
    sign = 1.0 if high else -1.0  # the high shelf mirrors the low shelf's ·cos terms
    b = [a * ((a + 1) + sign * (a - 1) * cos_w0 + two_sqrt_a_alpha),
         -sign * 2 * a * ((a - 1) + sign * (a + 1) * cos_w0),
         a * ((a + 1) + sign * (a - 1) * cos_w0 - two_sqrt_a_alpha)]
    den = [(a + 1) - sign * (a - 1) * cos_w0 + two_sqrt_a_alpha,
           sign * 2 * ((a - 1) - sign * (a + 1) * cos_w0),
           (a + 1) - sign * (a - 1) * cos_w0 - two_sqrt_a_alpha]
    return np.array([[*b, *den]]) / den[0]


def tilt_sos(tilt_db: float, pivot_hz: float, sample_rate: int) -> np.ndarray:
    """Spectral tilt: highs tilt_db above lows, 0 dB at the pivot. (1, 6) float64 sos."""
    sos = shelf_sos(pivot_hz, tilt_db, sample_rate, high=True)
    sos[0, :3] *= 10.0 ** (-tilt_db / 40.0)  # half the shelf down: lows −t/2, highs +t/2
    return sos


def peak_sos(freq_hz: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """A peaking EQ biquad (RBJ cookbook): gain_db at freq_hz, bandwidth by q. (1, 6) float64."""
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * _clamp_hz(freq_hz, sample_rate) / sample_rate
    alpha = math.sin(w0) / (2.0 * q)
    cos_w0 = math.cos(w0)
    b = [1 + alpha * a, -2 * cos_w0, 1 - alpha * a]
    den = [1 + alpha / a, -2 * cos_w0, 1 - alpha / a]
    return np.array([[*b, *den]]) / den[0]


def pass_sos(cutoff_hz: float, sample_rate: int, high: bool) -> np.ndarray:
    """2nd-order Butterworth high-pass or low-pass (−3 dB at cutoff_hz). (1, 6) float64 sos."""
    return sps.butter(2, _clamp_hz(cutoff_hz, sample_rate), btype="highpass" if high else "lowpass",
                      fs=sample_rate, output="sos")


def filter_audio(audio: np.ndarray, sos: np.ndarray) -> np.ndarray:
    """audio (n, 2) through the biquad cascade sos (sections, 6) along time → float32 (n, 2)."""
    return sps.sosfilt(sos, audio, axis=0).astype(np.float32)


def saturate(audio: np.ndarray, drive: float) -> np.ndarray:
    """Soft clipping y = tanh(g·x) / g with g = drive / peak(audio): unity gain for small
    samples, the peak squeezed to tanh(drive)/drive of itself. (n, 2) float32."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak == 0.0:
        return audio
    g = np.float32(drive / peak)
    return (np.tanh(audio * g) / g).astype(np.float32, copy=False)


def reverb_ir(rt60_s: float, predelay_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A stereo decaying-noise impulse response: float32 (m, 2), unit energy per channel.

    Independent noise per channel (a wide, diffuse room), exponential decay of 60 dB over
    rt60_s, cut where it has decayed by 60 dB, after predelay_s of silence.
    """
    n_decay = max(1, round(rt60_s * sample_rate))
    n_pre = round(predelay_s * sample_rate)
    t = np.arange(n_decay, dtype=np.float32) / np.float32(sample_rate)
    envelope = np.exp(np.float32(-math.log(1000.0) / rt60_s) * t)  # 1000 = 60 dB in amplitude
    noise = rng.standard_normal((n_decay, 2), dtype=np.float32) * envelope[:, None]
    noise /= np.sqrt(np.sum(noise**2, axis=0, keepdims=True))
    return np.concatenate([np.zeros((n_pre, 2), dtype=np.float32), noise])


def add_reverb(audio: np.ndarray, ir: np.ndarray, wet_db: float) -> np.ndarray:
    """audio + 10^(wet_db/20) · (audio ∗ ir), per channel, cut to the input length.

    audio (n, 2) float32, ir (m, 2) float32 → (n, 2) float32.
    """
    wet = sps.oaconvolve(audio, ir, axes=0)[: len(audio)]
    return (audio + np.float32(10.0 ** (wet_db / 20.0)) * wet).astype(np.float32, copy=False)


# --- one stem, four stems ----------------------------------------------------------------


def apply_stem_effects(audio: np.ndarray, effects: StemEffects, sample_rate: int = SIGNAL.sample_rate,
                       tilt_pivot_hz: float = AugmentConfig.tilt_pivot_hz) -> np.ndarray:
    """One stem's drawn changes applied: audio (n, 2) float32 → (n, 2) float32 (may be new)."""
    if effects.silence:
        return np.zeros_like(audio)
    sections = []
    if effects.tilt_db is not None:
        sections.append(tilt_sos(effects.tilt_db, tilt_pivot_hz, sample_rate))
    if effects.highpass_hz is not None:
        sections.append(pass_sos(effects.highpass_hz, sample_rate, high=True))
    if effects.lowpass_hz is not None:
        sections.append(pass_sos(effects.lowpass_hz, sample_rate, high=False))
    if effects.peak is not None:
        sections.append(peak_sos(*effects.peak, sample_rate))
    if sections:
        audio = filter_audio(audio, np.concatenate(sections))
    if effects.drive is not None:
        audio = saturate(audio, effects.drive)
    if effects.reverb is not None:
        rt60_s, wet_db, predelay_s, ir_seed = effects.reverb
        ir = reverb_ir(rt60_s, predelay_s, sample_rate, np.random.default_rng(ir_seed))
        audio = add_reverb(audio, ir, wet_db)
    if effects.gain_db:
        audio = apply_gain(audio, effects.gain_db)
    if effects.swap:
        audio = swap_channels(audio)
    return audio


def augment_stems(stems: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> list[StemEffects]:
    """Augment the stems of one excerpt in place: stems float32 (len(STEMS), n, 2).

    Returns the changes drawn for each stem (STEMS order), for logging and tests. The mixture
    is the caller's to re-make: stems.sum(axis=0).
    """
    if stems.ndim != 3 or stems.shape[0] != len(STEMS) or stems.shape[2] != 2:
        raise ValueError(f"stems must be ({len(STEMS)}, n_samples, 2). Received shape {stems.shape}")
    drawn = []
    for j in range(len(STEMS)):
        effects = draw_stem_effects(config, rng)
        stems[j] = apply_stem_effects(stems[j], effects, config.sample_rate, config.tilt_pivot_hz)
        drawn.append(effects)
    return drawn
