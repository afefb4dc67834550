"""Synthetic multitrack songs for training and testing (DESIGN.md §6).

Procedurally composed songs (genres, tempos, keys, feels, sections, fills) rendered per stem:
FluidSynth with General MIDI soundfonts for bass and "other", GM and recorded Hydrogen kits for
drums, and espeak-ng speech sung with the WORLD vocoder for vocals; then mixed with effects.

    from tuiplayer.synth import generate
    generate(Path("data/synth"), songs=100, seconds=30, seed=1)

Modules: theory (keys, chords), styles (genres), arrangement (form), drums, parts (bass and other),
melody (+ lyrics), score (data types), compose (a Song from a seed), fluid (FluidSynth), drumkits
(Hydrogen sampler), vocals (espeak-ng + WORLD), production (effects, mixing), render (Song →
stems), generate (folders on disk, in parallel), demo (the bundled demo song), resources (checks).
"""

from __future__ import annotations

from tuiplayer.synth.generate import generate

__all__ = ["generate"]
