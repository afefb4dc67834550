"""Render a composed `Song` to its four stems: FluidSynth parts, drums (GM or Hydrogen samples),
sung vocals, then production.

All stems come out float32 (n_samples, 2) at 44.1 kHz, n_samples = round(song.seconds × 44100),
already mixed (effects, levels, master bus, normalisation), so the mixture is their sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuiplayer.config import STEMS
from tuiplayer.synth import production, vocals
from tuiplayer.synth.drumkits import HydrogenSampler, Kit
from tuiplayer.synth.drums import GM_KEYS
from tuiplayer.synth.fluid import FluidRenderer
from tuiplayer.synth.score import DrumPart, Hit, Note, Song
from tuiplayer.synth.styles import ACOUSTIC_KIT_GENRES, AVL_RECIPE

SAMPLE_RATE = 44100
PRODUCTION_STREAM = 7
"""Sub-stream of the song's seed used for production and performance randomness."""

RECIPE2_STREAM = 8
"""Sub-stream for recipe 2's draws, so that the draws of recipe 1 (PRODUCTION_STREAM) stay as they were."""

RECIPE3_STREAM = 9
"""Sub-stream for recipe 3's choice of an AVL kit."""

AVL_SHARE = 0.4
"""Recipe 3: the chance that a song of an acoustic-kit genre plays its kit on an AVL kit."""

AVL_KEYS = frozenset(range(36, 62))
"""The General MIDI drum keys the AVL kits have samples for."""

GM_DRUM_NOTE_S = 0.25
"""Length of GM percussion notes (most kits ignore note-off; hats choke by exclusive class)."""


@dataclass(frozen=True)
class RenderedSong:
    """A song's stems (name → float32 (n, 2)) and what was used to make them (for song.json)."""

    stems: dict[str, np.ndarray]
    info: dict[str, object]


def _gm_drum_notes(hits: tuple[Hit, ...], rng: np.random.Generator, keys: frozenset[int] | None = None) -> list[Note]:
    """Notes on the General MIDI drum keys (of `keys` only, when given: a kit's sampled keys)."""
    choices = {piece: [k for k in options if keys is None or k in keys] for piece, options in GM_KEYS.items()}
    variant = {piece: options[int(rng.integers(len(options)))] for piece, options in choices.items() if options}
    variant["hat_closed"], variant["hat_open"] = 42, 46  # the hats must stay a choking pair
    notes = []
    for hit in hits:
        key = variant.get(hit.piece)
        if key is None:
            continue
        velocity = int(np.clip(round(12 + 115 * hit.velocity), 1, 127))
        notes.append(Note(hit.time_s, hit.time_s + GM_DRUM_NOTE_S, key, velocity))
    return notes


def _render_drums(
    part: DrumPart, n: int, renderer: FluidRenderer, kits: dict[str, Kit], rng: np.random.Generator
) -> tuple[np.ndarray, str]:
    if part.source == "gm":
        audio, preset = renderer.render(_gm_drum_notes(part.hits, rng), n, part.soundfont, 128, part.program,
                                        drums=True)
        font = Path(renderer.soundfonts[part.soundfont % len(renderer.soundfonts)]).name
        return audio, f"{font} kit {preset.program} {preset.name}"
    kit = kits[part.kit]
    choices = {piece: int(rng.integers(len(options))) for piece, options in sorted(kit.pieces.items())}
    sampler = HydrogenSampler(kit, choices, mirror=bool(rng.random() < 0.5))
    return sampler.render(part.hits, n, rng), f"hydrogen {kit.name}"


def _render_avl(part: DrumPart, n: int, renderer: FluidRenderer, font: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, str]:
    """A drum part played on an AVL kit (a melodic preset of its own soundfont, GM drum keys)."""
    audio, preset = renderer.render(_gm_drum_notes(part.hits, rng, AVL_KEYS), n, font, 0, 0)
    return audio, f"avl {preset.name}"


def _mix(layers: list[np.ndarray], n: int) -> np.ndarray:
    """Sum of (n, 2) float32 layers; silence when there are none."""
    return np.sum(layers, axis=0, dtype=np.float32) if layers else np.zeros((n, 2), dtype=np.float32)


def render_song(song: Song, renderer: FluidRenderer, kits: dict[str, Kit], espeak: str, recipe: int,
                drum_fonts: tuple[int, ...] = ()) -> RenderedSong:
    """All stems of `song`, produced under `recipe` (generate.RECIPES) and normalised, plus a
    description of how. drum_fonts: the renderer's soundfonts that are AVL kits (recipe 3)."""
    rng = np.random.default_rng([song.seed, song.index, PRODUCTION_STREAM])
    later = np.random.default_rng([song.seed, song.index, RECIPE2_STREAM]) if recipe >= 2 else None
    avl_font = None
    if recipe >= AVL_RECIPE and drum_fonts and song.genre in ACOUSTIC_KIT_GENRES:
        choice = np.random.default_rng([song.seed, song.index, RECIPE3_STREAM])
        if choice.random() < AVL_SHARE:
            avl_font = drum_fonts[int(choice.integers(len(drum_fonts)))]
    renderer.begin_song()
    n = round(song.seconds * SAMPLE_RATE)
    beat_s = 60.0 / song.tempo_bpm
    effects: dict[str, list[str]] = {}
    used: dict[str, object] = {}

    # drums
    drum_layers = []
    for part in song.drums:
        if part.name == "kit" and avl_font is not None:
            audio, what = _render_avl(part, n, renderer, avl_font, rng)
        else:
            audio, what = _render_drums(part, n, renderer, kits, rng)
        layer, _ = production.level(audio, production.REFERENCE_DB - (0.0 if part.name == "kit" else
                                                                     float(rng.uniform(6, 12))))
        drum_layers.append(layer)
        used[f"drums_{part.name}"] = what
    drums, effects["drums"] = production.process_drums(_mix(drum_layers, n), rng, song.genre)

    # bass and other (FluidSynth parts)
    bass_layers, other_layers, vocal_pads = [], [], []
    has_lead = False
    for part in song.parts:
        audio, preset = renderer.render(part.notes, n, part.soundfont, part.bank, part.program)
        sf_name = Path(renderer.soundfonts[part.soundfont % len(renderer.soundfonts)]).name
        used[f"{part.stem}_{part.name}"] = f"{sf_name} {preset.bank}:{preset.program} {preset.name}"
        if part.stem == "bass":
            bass_layers.append(audio)
        elif part.stem == "other":
            rel = {"lead": float(rng.uniform(-1, 1.5)), "counter": float(rng.uniform(-6, -2)),
                   "pad": float(rng.uniform(-7, -2)), "arp": float(rng.uniform(-6, -2))}.get(part.role, 0.0)
            audio, _ = production.level(audio, production.REFERENCE_DB + rel)
            amped: list[str] = []
            if later is not None:
                audio, amped = production.amp(audio, later, part.program, song.genre)
            processed, notes = production.process_other_part(audio, rng, part.pan, part.role)
            effects[f"other_{part.name}"] = amped + notes
            other_layers.append(processed)
            has_lead = has_lead or part.role == "lead"
        else:  # backing "oohs" in the vocals stem
            vocal_pads.append(production.balance(audio, part.pan))
    bass, tone = _mix(bass_layers, n), []
    if later is not None:
        bass_programs = {part.program for part in song.parts if part.stem == "bass"}
        bass, tone = production.bass_tone(bass, later, bass_programs, song.genre)
    bass, notes = production.process_bass(bass, rng, song.genre)
    effects["bass"] = tone + notes
    other, effects["other"] = production.process_other_bus(_mix(other_layers, n), rng, beat_s, has_lead)

    # vocals
    lead, sung_info = _render_vocals(song, n, espeak, rng)
    if vocal_pads:
        lead_rms = production.active_rms(lead)
        lead_db = 20 * np.log10(lead_rms) if lead_rms > 0 else production.REFERENCE_DB
        pad, _ = production.level(_mix(vocal_pads, n), lead_db - float(rng.uniform(8, 14)))
        lead = lead + pad
    voc, effects["vocals"] = production.process_vocals(lead, rng, beat_s, song.genre)
    used.update(sung_info)

    stems = {"vocals": voc, "drums": drums, "bass": bass, "other": other}
    levels: dict[str, float] = {}
    for stem in STEMS:
        low, high = production.LEVEL_OFFSETS_DB[stem]
        levels[stem] = production.REFERENCE_DB + float(rng.uniform(low, high))
        stems[stem], _ = production.level(stems[stem], levels[stem])
    stems, master = production.master(stems, rng)
    return RenderedSong(stems, {"recipe": recipe, "sources": used, "effects": effects, "levels_db": levels,
                                "master": master})


def _render_vocals(song: Song, n: int, espeak: str, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, object]]:
    """The sung lead, harmonies and breaths as stereo float32 (n, 2)."""
    part = song.vocals
    singer = part.singer
    bank = vocals.WordBank(espeak, singer.voice, air_slope=float(rng.uniform(1.6, 2.8)),
                           formant_shift=singer.formant_shift, breathiness=singer.breathiness)
    lead = np.zeros(n)
    for phrase in part.lead:
        start, audio = vocals.sing_phrase(phrase, singer, bank, rng)
        vocals.place(lead, start, audio)
    lead_rms = production.active_rms(lead[:, None])
    if part.breaths and lead_rms > 0:
        for start_s, duration_s in part.breaths:
            level = lead_rms * 10 ** (-float(rng.uniform(14, 22)) / 20)
            vocals.place(lead, int(start_s * SAMPLE_RATE), vocals.breath(duration_s, rng), level)
    out = production.pan_mono(lead.astype(np.float32), float(rng.uniform(-0.05, 0.05)))
    for phrase, pan, gain_db in part.harmonies:
        start, audio = vocals.sing_phrase(phrase, singer, bank, rng, full_band=False)
        stereo = production.pan_mono(audio.astype(np.float32), pan) * np.float32(10 ** (gain_db / 20))
        for ch in range(2):
            vocals.place(out[:, ch], start, stereo[:, ch])
    info = {"vocals_voice": f"espeak-ng {singer.voice}", "vocals_words": bank.n_words}
    return out, info
