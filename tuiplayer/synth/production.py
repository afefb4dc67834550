"""Mixing: per-stem effects (EQ, compression, saturation, delay, reverb), stereo placement,
song-to-song level balance, a shared master-bus compressor/limiter, and peak normalisation.

Each stem is processed on its own (a stem's reverb belongs to that stem), with settings drawn
from the song's random generator. The master bus is made linear per stem: its gain curve is
computed from the mixture and applied to every stem alike, so the mixture is still exactly the sum
of the stems. Arrays are float32 (n_samples, 2); pedalboard wants (channels, samples), so it is
handed the transpose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pedalboard as pb

from tuiplayer.config import STEMS

SAMPLE_RATE = 44100
REFERENCE_DB = -20.0
"""Active-part RMS level every stem is first brought to, before the song's balance offsets."""

LEVEL_OFFSETS_DB: dict[str, tuple[float, float]] = {
    "vocals": (0.5, 6.5), "drums": (-4.0, 3.0), "bass": (-5.0, 2.0), "other": (-4.0, 3.0),
}
"""Range of each stem's level around REFERENCE_DB, drawn per song (mixes differ)."""

PEAK_RANGE = (0.7, 0.97)
"""The mixture's peak after normalisation is drawn from this range (never clipping)."""

END_FADE_S = 0.01
"""Fade applied to every stem at the very end, where notes are cut."""


@dataclass(frozen=True)
class MixInfo:
    """What production did, for song.json: per-stem level (dB) and effects, master settings."""

    levels_db: dict[str, float]
    effects: dict[str, list[str]]
    master: dict[str, float]


def pan_mono(x: np.ndarray, pan: float) -> np.ndarray:
    """Mono (n,) → stereo (n, 2) float32 with a constant-power pan (-1 left … +1 right)."""
    angle = (np.clip(pan, -1.0, 1.0) + 1.0) * np.pi / 4
    return np.stack([x * np.cos(angle), x * np.sin(angle)], axis=1).astype(np.float32) * np.float32(np.sqrt(2))


def balance(x: np.ndarray, pan: float) -> np.ndarray:
    """Stereo (n, 2) → (n, 2): move the image towards one side, keeping the total power."""
    if abs(pan) < 1e-3:
        return x
    mid = x.mean(axis=1)
    side_gain = np.float32(abs(pan))
    placed = pan_mono(mid, pan)
    return ((1 - side_gain) * x + side_gain * placed).astype(np.float32)


def active_rms(x: np.ndarray, block: int = 2048) -> float:
    """RMS over the blocks that sound (within 40 dB of the loudest): level where a stem plays."""
    n = len(x) // block * block
    if n == 0:
        return float(np.sqrt(np.mean(x ** 2))) if x.size else 0.0
    energy = (x[:n] ** 2).reshape(-1, block * x.shape[1]).mean(axis=1)
    if energy.max() <= 0:
        return 0.0
    loud = energy[energy > energy.max() * 1e-4]
    return float(np.sqrt(loud.mean()))


def _run(board: pb.Pedalboard, x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(board(np.ascontiguousarray(x.T), SAMPLE_RATE).T, dtype=np.float32)


def reverb_ir(rng: np.random.Generator, decay_s: float, predelay_s: float, brightness: float) -> np.ndarray:
    """A synthetic room/plate impulse response: decorrelated noise per channel with exponential
    decay, early reflections, and high frequencies dying faster. Returns (2, n) float32."""
    n = int((decay_s * 1.1 + predelay_s) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros((2, n))
    pre = int(predelay_s * SAMPLE_RATE)
    cutoff_hz = 1500 + 5000 * brightness
    for ch in range(2):
        noise = rng.normal(0.0, 1.0, n - pre)
        freqs = np.fft.rfftfreq(n - pre, 1.0 / SAMPLE_RATE)
        low = np.fft.irfft(np.fft.rfft(noise) / np.sqrt(1.0 + (freqs / cutoff_hz) ** 2), n - pre)
        tt = t[: n - pre]
        # full band decays with decay_s (RT60); the highs decay twice as fast
        env = 10 ** (-3 * tt / decay_s)
        env_hi = 10 ** (-6 * tt / decay_s)
        out[ch, pre:] = low * env + (noise - low) * env_hi
        for _ in range(8):  # a few early reflections
            k = pre + int(rng.uniform(0.003, 0.04) * SAMPLE_RATE)
            if k < n:
                out[ch, k] += rng.uniform(0.2, 0.6) * rng.choice([-1, 1]) * np.sqrt(n / SAMPLE_RATE) * 3
    out /= np.sqrt((out ** 2).sum(axis=1, keepdims=True).mean())
    return out.astype(np.float32)


def _reverb(x: np.ndarray, rng: np.random.Generator, kind: str, wet_db: float, notes: list[str]) -> np.ndarray:
    """x plus its reverb at wet_db. kind: "room", "plate" or "hall" (sets the decay)."""
    decay = {"room": (0.3, 0.8), "plate": (0.9, 1.8), "hall": (1.4, 2.4)}[kind]
    decay_s = float(rng.uniform(*decay))
    wet_gain = 10 ** (wet_db / 20)
    if rng.random() < 0.6:
        ir = reverb_ir(rng, decay_s, float(rng.uniform(0.0, 0.04)), float(rng.uniform(0.2, 1.0)))
        wet = _run(pb.Pedalboard([pb.Convolution(ir, 1.0, SAMPLE_RATE)]), x)
        wet *= np.float32(wet_gain * 0.05)
        notes.append(f"convolution {kind} {decay_s:.1f}s {wet_db:.0f}dB")
    else:
        room = float(np.clip(decay_s / 2.6, 0.1, 0.9))
        wet = _run(pb.Pedalboard([pb.Reverb(room_size=room, damping=float(rng.uniform(0.3, 0.7)), wet_level=1.0,
                                            dry_level=0.0, width=float(rng.uniform(0.7, 1.0)))]), x)
        wet *= np.float32(wet_gain * 0.5)
        notes.append(f"reverb {kind} room {room:.2f} {wet_db:.0f}dB")
    return x + wet


def _delay(x: np.ndarray, rng: np.random.Generator, beat_s: float, wet_db: float, notes: list[str]) -> np.ndarray:
    division = float(rng.choice([0.5, 0.75, 1.0, 0.25]))
    delay_s = min(division * beat_s, 1.5)
    feedback = float(rng.uniform(0.15, 0.4))
    wet = _run(pb.Pedalboard([pb.Delay(delay_seconds=delay_s, feedback=feedback, mix=1.0),
                              pb.LowpassFilter(float(rng.uniform(2500, 6000))), pb.HighpassFilter(300)]), x)
    notes.append(f"delay {division} beat fb {feedback:.2f} {wet_db:.0f}dB")
    return x + wet * np.float32(10 ** (wet_db / 20))


def _eq(rng: np.random.Generator, lo_cut: tuple[float, float], notes: list[str]) -> list[pb.Plugin]:
    hp = float(rng.uniform(*lo_cut))
    peak_f = float(np.exp(rng.uniform(np.log(200), np.log(6000))))
    peak_db = float(rng.uniform(-4, 4))
    shelf_db = float(rng.uniform(-3, 3))
    notes.append(f"eq hp {hp:.0f}Hz peak {peak_f:.0f}Hz {peak_db:+.1f}dB shelf {shelf_db:+.1f}dB")
    return [pb.HighpassFilter(hp), pb.PeakFilter(peak_f, peak_db, float(rng.uniform(0.6, 1.5))),
            pb.HighShelfFilter(float(rng.uniform(6000, 11000)), shelf_db)]


def _compressor(rng: np.random.Generator, threshold: tuple[float, float], ratio: tuple[float, float],
                attack_ms: tuple[float, float], notes: list[str]) -> pb.Compressor:
    c = pb.Compressor(threshold_db=float(rng.uniform(*threshold)), ratio=float(rng.uniform(*ratio)),
                      attack_ms=float(rng.uniform(*attack_ms)), release_ms=float(rng.uniform(50, 200)))
    notes.append(f"compressor {c.threshold_db:.0f}dB {c.ratio:.1f}:1")
    return c


def process_vocals(x: np.ndarray, rng: np.random.Generator, beat_s: float, genre: str) -> tuple[np.ndarray, list[str]]:
    """Vocal chain: high-pass, compression, presence and air, saturation sometimes, delay, reverb."""
    notes: list[str] = []
    chain: list[pb.Plugin] = [pb.HighpassFilter(float(rng.uniform(80, 150)))]
    chain.append(_compressor(rng, (-26, -16), (2.5, 6), (2, 10), notes))
    presence = float(rng.uniform(0.5, 4.5))
    chain.append(pb.PeakFilter(float(rng.uniform(2500, 5000)), presence, 0.8))
    chain.append(pb.LowShelfFilter(float(rng.uniform(150, 300)), float(rng.uniform(-4, 1))))
    chain.append(pb.HighShelfFilter(float(rng.uniform(8000, 12000)), float(rng.uniform(0, 4))))
    notes.append(f"presence {presence:+.1f}dB")
    if rng.random() < 0.12 or (genre == "rock" and rng.random() < 0.25):
        drive = float(rng.uniform(4, 12))
        chain.append(pb.Distortion(drive))
        chain.append(pb.Gain(-drive * 0.6))
        notes.append(f"saturation {drive:.0f}dB")
    y = _run(pb.Pedalboard(chain), x)
    if rng.random() < 0.5:
        y = _delay(y, rng, beat_s, float(rng.uniform(-22, -12)), notes)
    kind = str(rng.choice(["plate", "hall", "room"]))
    y = _reverb(y, rng, kind, float(rng.uniform(-18, -8)), notes)
    return y, notes


def process_drums(x: np.ndarray, rng: np.random.Generator, genre: str) -> tuple[np.ndarray, list[str]]:
    """Drum bus: EQ (punch, box cut, air), compression, saturation or crushing sometimes, a room."""
    notes: list[str] = []
    chain: list[pb.Plugin] = [
        pb.LowShelfFilter(float(rng.uniform(60, 110)), float(rng.uniform(-1, 4))),
        pb.PeakFilter(float(rng.uniform(300, 600)), float(rng.uniform(-5, 1)), 1.0),
        pb.HighShelfFilter(float(rng.uniform(6000, 10000)), float(rng.uniform(-2, 4))),
        _compressor(rng, (-22, -10), (2, 5), (5, 30), notes),
    ]
    if genre in ("rock", "hiphop", "electronic") and rng.random() < 0.3:
        drive = float(rng.uniform(3, 10))
        chain += [pb.Distortion(drive), pb.Gain(-drive * 0.7)]
        notes.append(f"saturation {drive:.0f}dB")
    if genre == "hiphop" and rng.random() < 0.2:
        bits = float(rng.uniform(9, 12))
        chain.append(pb.Bitcrush(bits))
        notes.append(f"bitcrush {bits:.0f} bits")
    y = _run(pb.Pedalboard(chain), x)
    return _reverb(y, rng, "room", float(rng.uniform(-22, -12)), notes), notes


def process_bass(x: np.ndarray, rng: np.random.Generator, genre: str) -> tuple[np.ndarray, list[str]]:
    """Bass: low cut, tone, heavy compression, saturation sometimes; kept near the centre."""
    notes: list[str] = []
    chain: list[pb.Plugin] = [pb.HighpassFilter(float(rng.uniform(25, 45)))]
    if rng.random() < 0.4:
        cutoff = float(rng.uniform(1500, 6000))
        chain.append(pb.LowpassFilter(cutoff))
        notes.append(f"lowpass {cutoff:.0f}Hz")
    chain.append(pb.PeakFilter(float(rng.uniform(600, 1200)), float(rng.uniform(-2, 4)), 1.0))
    chain.append(_compressor(rng, (-24, -14), (3, 8), (5, 25), notes))
    if genre in ("rock", "funk", "hiphop") and rng.random() < 0.35:
        drive = float(rng.uniform(3, 9))
        chain += [pb.Distortion(drive), pb.Gain(-drive * 0.7)]
        notes.append(f"saturation {drive:.0f}dB")
    y = _run(pb.Pedalboard(chain), x)
    mono = y.mean(axis=1, keepdims=True)
    return (0.8 * mono + 0.2 * y).astype(np.float32), notes


def process_other_part(x: np.ndarray, rng: np.random.Generator, pan: float, role: str) -> tuple[np.ndarray, list[str]]:
    """One "other" part: EQ, gentle compression, modulation sometimes, placed at `pan`."""
    notes: list[str] = []
    chain = _eq(rng, (60, 250) if role != "pad" else (100, 300), notes)
    chain.append(_compressor(rng, (-20, -10), (1.5, 3), (5, 30), notes))
    roll = rng.random()
    if roll < 0.15:
        chain.append(pb.Chorus(rate_hz=float(rng.uniform(0.3, 1.5)), depth=float(rng.uniform(0.1, 0.4)), mix=0.4))
        notes.append("chorus")
    elif roll < 0.22:
        chain.append(pb.Phaser(rate_hz=float(rng.uniform(0.2, 1.0)), mix=0.4))
        notes.append("phaser")
    y = _run(pb.Pedalboard(chain), x)
    notes.append(f"pan {pan:+.2f}")
    return balance(y, pan), notes


def _at_level_of(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y scaled to x's active RMS (an effect that keeps the part's level)."""
    return level(y, 20 * np.log10(max(active_rms(x), 1e-9)))[0]


GUITARS = range(24, 32)
"""GM programs 24-31: nylon, steel, jazz, clean, muted, overdriven, distortion, harmonics guitar."""
DRIVEN_KEYS = (16, 17, 18, 80, 81, 84, 87)
"""GM organs and synth leads that a player sometimes drives through an amp or a pedal."""
AMP_SHARE = {"rock": 0.8, "funk": 0.35, "pop": 0.4, "reggae": 0.25, "hiphop": 0.2, "electronic": 0.3,
             "ballad": 0.1, "jazz": 0.05}
"""Recipe 2: chance that a guitar part goes through an amp (organs and synths: a third of it)."""


def amp(x: np.ndarray, rng: np.random.Generator, program: int, genre: str) -> tuple[np.ndarray, list[str]]:
    """Recipe 2: a guitar amp on the whole part (chords distort together, as from one string
    bank, unlike FluidSynth's per-note overdrive samples): drive, then a speaker cabinet (low
    and high cut, a mid bump). The part keeps its level. Returns x unchanged when no amp is drawn."""
    share = AMP_SHARE.get(genre, 0.3) * (1.0 if program in GUITARS else 1 / 3 if program in DRIVEN_KEYS else 0.0)
    if rng.random() >= share:
        return x, []
    drive = float(rng.uniform(4, 12) if program in (29, 30) else rng.uniform(8, 30))  # on top of driven samples
    board = pb.Pedalboard([
        pb.HighpassFilter(float(rng.uniform(70, 140))),
        pb.PeakFilter(float(rng.uniform(600, 1000)), float(rng.uniform(0, 6)), 0.7),  # tube screamer hump
        pb.Distortion(drive),
        pb.LowpassFilter(float(rng.uniform(3000, 6500))),  # the speaker
        pb.PeakFilter(float(rng.uniform(1200, 2500)), float(rng.uniform(1, 5)), 1.0),
        pb.PeakFilter(float(rng.uniform(300, 500)), float(rng.uniform(-4, 0)), 1.0),
    ])
    return _at_level_of(_run(board, x), x), [f"amp {drive:.0f}dB"]


def bass_tone(x: np.ndarray, rng: np.random.Generator, programs: set[int], genre: str) -> tuple[np.ndarray, list[str]]:
    """Recipe 2: what a bass has before the desk: synth basses (GM 38, 39) through a resonant
    ladder filter, and drive (a pedal or an overdriven amp, then a cabinet's high cut) in every
    genre but rarely in jazz and ballads. The bass keeps its level."""
    notes: list[str] = []
    board: list[pb.Plugin] = []
    if programs & {38, 39} and rng.random() < 0.6:
        cutoff = float(np.exp(rng.uniform(np.log(300), np.log(3000))))
        board.append(pb.LadderFilter(pb.LadderFilter.Mode.LPF24, cutoff_hz=cutoff,
                                     resonance=float(rng.uniform(0.1, 0.7)), drive=float(rng.uniform(1, 3))))
        notes.append(f"ladder {cutoff:.0f}Hz")
    if rng.random() < (0.12 if genre in ("jazz", "ballad") else 0.45):
        drive = float(rng.uniform(10, 28))  # fed at REFERENCE_DB: from a warm edge to fuzz
        board += [pb.Distortion(drive), pb.LowpassFilter(float(rng.uniform(1800, 5000)))]
        notes.append(f"drive {drive:.0f}dB")
    if not board:
        return x, notes
    at_reference, gain_db = level(x, REFERENCE_DB)  # (the drive's effect depends on the level it is fed)
    y = _run(pb.Pedalboard(board), at_reference) * np.float32(10 ** (-gain_db / 20))
    return _at_level_of(y, x), notes


def process_other_bus(
    x: np.ndarray, rng: np.random.Generator, beat_s: float, has_lead: bool
) -> tuple[np.ndarray, list[str]]:
    """The "other" stem as a whole: a shared reverb (and a delay when a lead plays)."""
    notes: list[str] = []
    if has_lead and rng.random() < 0.5:
        x = _delay(x, rng, beat_s, float(rng.uniform(-24, -16)), notes)
    return _reverb(x, rng, str(rng.choice(["room", "plate", "hall"])), float(rng.uniform(-18, -8)), notes), notes


def level(x: np.ndarray, target_db: float) -> tuple[np.ndarray, float]:
    """Scale x so its active RMS is target_db; returns (scaled, gain in dB)."""
    rms = active_rms(x)
    if rms <= 0:
        return x, 0.0
    gain_db = target_db - 20 * np.log10(rms)
    return (x * np.float32(10 ** (gain_db / 20))).astype(np.float32), float(gain_db)


def _bus_gain(mix: np.ndarray, threshold_db: float, ratio: float, attack_s: float, release_s: float,
              ceiling: float | None, block: int = 256) -> np.ndarray:
    """Gain curve (n,) of a compressor (and a look-ahead peak limiter at `ceiling`) fed by `mix`."""
    n = len(mix)
    n_blocks = -(-n // block)
    padded = np.zeros((n_blocks * block, 2), dtype=np.float32)
    padded[:n] = mix
    peaks = np.abs(padded).reshape(n_blocks, block * 2).max(axis=1).astype(np.float64)
    rms = np.sqrt((padded.astype(np.float64) ** 2).reshape(n_blocks, block * 2).mean(axis=1))
    level_db = 20 * np.log10(np.maximum(rms * np.sqrt(2), 1e-9))
    target = np.minimum(0.0, (threshold_db - level_db) * (1.0 - 1.0 / ratio))
    a_att = np.exp(-block / (attack_s * SAMPLE_RATE))
    a_rel = np.exp(-block / (release_s * SAMPLE_RATE))
    gain_db = np.zeros(n_blocks)
    g = 0.0
    for i, t in enumerate(target):
        coeff = a_att if t < g else a_rel
        g = coeff * g + (1.0 - coeff) * t
        gain_db[i] = g
    gain = 10 ** (gain_db / 20)
    if ceiling is not None:
        need = np.minimum(1.0, ceiling / np.maximum(peaks * gain, 1e-9))
        # look ahead one block either side, then release smoothly
        need = np.minimum.reduce([need, np.roll(need, 1), np.roll(need, -1)])
        smooth = np.empty_like(need)
        h = 1.0
        for i, t in enumerate(need):
            h = t if t < h else 0.995 * h + 0.005 * t
            smooth[i] = h
        gain = gain * smooth
    centres = (np.arange(n_blocks) + 0.5) * block
    return np.interp(np.arange(n), centres, gain).astype(np.float32)


def master(stems: dict[str, np.ndarray], rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Master bus shared by all stems, then one normalising factor so the mixture peaks below 1.

    stems: name → (n, 2) float32. The bus compressor/limiter gain is computed on the mixture and
    applied to every stem, so sum(stems) stays the mixture. Returns (stems, settings).
    """
    mix = np.sum([stems[s] for s in STEMS], axis=0, dtype=np.float32)
    settings: dict[str, float] = {}
    if rng.random() < 0.75:
        threshold = float(rng.uniform(-20, -10))
        ratio = float(rng.uniform(1.5, 4))
        peak = float(np.max(np.abs(mix))) or 1.0
        ceiling = peak * 10 ** (-float(rng.uniform(1, 9)) / 20) if rng.random() < 0.6 else None
        gain = _bus_gain(mix, threshold + 20 * np.log10(peak), ratio, float(rng.uniform(0.005, 0.03)),
                         float(rng.uniform(0.08, 0.3)), ceiling)
        stems = {s: (x * gain[:, None]).astype(np.float32) for s, x in stems.items()}
        settings.update(bus_threshold_db=threshold, bus_ratio=ratio,
                        bus_max_reduction_db=float(-20 * np.log10(max(float(gain.min()), 1e-9))),
                        limiter=1.0 if ceiling is not None else 0.0)
    n = len(mix)
    fade = min(n, int(END_FADE_S * SAMPLE_RATE))
    ramp = np.ones(n, dtype=np.float32)
    ramp[n - fade:] = np.linspace(1.0, 0.0, fade, dtype=np.float32)
    stems = {s: x * ramp[:, None] for s, x in stems.items()}
    mix = np.sum([stems[s] for s in STEMS], axis=0, dtype=np.float32)
    target_peak = float(rng.uniform(*PEAK_RANGE))
    factor = np.float32(target_peak / max(float(np.max(np.abs(mix))), 1e-9))
    stems = {s: (x * factor).astype(np.float32) for s, x in stems.items()}
    settings["peak"] = target_peak
    return stems, settings
