"""FluidSynth through its C library (ctypes): SoundFonts loaded once per process, parts rendered
straight into float32 arrays.

Loading FluidR3_GM.sf2 (148 MB) takes ~0.4 s, so a worker process loads every soundfont once and
renders all its parts with the same synthesizer. That is deterministic only with care, and this
module takes it: FluidSynth's own reverb and chorus are off (production adds effects), output is
float (no dither noise), every event falls on FluidSynth's 64-sample block grid, and between parts
the synthesizer is reset and run until no voice sounds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuiplayer.errors import BadInput
from tuiplayer.synth.score import Note

SAMPLE_RATE = 44100
BLOCK = 64
"""FluidSynth's internal block: events are applied at block boundaries, so we align them."""

SYNTH_GAIN = 0.4
DRUM_CHANNEL = 9
NOTE_OFF, NOTE_ON, CONTROL = 0, 1, 2

_LOG_LEVELS_SILENCED = (2, 3, 4)  # FLUID_WARN, FLUID_INFO, FLUID_DBG

_V = ctypes.c_void_p
_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "new_fluid_settings": (_V, []),
    "delete_fluid_settings": (None, [_V]),
    "fluid_settings_setnum": (ctypes.c_int, [_V, ctypes.c_char_p, ctypes.c_double]),
    "fluid_settings_setint": (ctypes.c_int, [_V, ctypes.c_char_p, ctypes.c_int]),
    "new_fluid_synth": (_V, [_V]),
    "delete_fluid_synth": (None, [_V]),
    "fluid_synth_sfload": (ctypes.c_int, [_V, ctypes.c_char_p, ctypes.c_int]),
    "fluid_synth_get_sfont_by_id": (_V, [_V, ctypes.c_int]),
    "fluid_sfont_iteration_start": (None, [_V]),
    "fluid_sfont_iteration_next": (_V, [_V]),
    "fluid_preset_get_banknum": (ctypes.c_int, [_V]),
    "fluid_preset_get_num": (ctypes.c_int, [_V]),
    "fluid_preset_get_name": (ctypes.c_char_p, [_V]),
    "fluid_synth_program_select": (ctypes.c_int, [_V, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]),
    "fluid_synth_noteon": (ctypes.c_int, [_V, ctypes.c_int, ctypes.c_int, ctypes.c_int]),
    "fluid_synth_noteoff": (ctypes.c_int, [_V, ctypes.c_int, ctypes.c_int]),
    "fluid_synth_cc": (ctypes.c_int, [_V, ctypes.c_int, ctypes.c_int, ctypes.c_int]),
    "fluid_synth_write_float": (ctypes.c_int, [_V, ctypes.c_int, _V, ctypes.c_int, ctypes.c_int, _V,
                                               ctypes.c_int, ctypes.c_int]),
    "fluid_synth_system_reset": (ctypes.c_int, [_V]),
    "fluid_synth_all_sounds_off": (ctypes.c_int, [_V, ctypes.c_int]),
    "fluid_synth_get_active_voice_count": (ctypes.c_int, [_V]),
    "fluid_set_log_function": (_V, [ctypes.c_int, _V, _V]),
}


def load_library() -> ctypes.CDLL:
    """The FluidSynth C library, with argument types declared; BadInput when it is missing."""
    names = [ctypes.util.find_library("fluidsynth"), "libfluidsynth.so.3", "libfluidsynth.so.2",
             "libfluidsynth.dylib", "libfluidsynth-3.dll"]
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        for func, (restype, argtypes) in _SIGNATURES.items():
            f = getattr(lib, func)
            f.restype = restype
            f.argtypes = argtypes
        return lib
    raise BadInput("the FluidSynth library is not installed (install the Debian package fluidsynth)")


@dataclass(frozen=True)
class Preset:
    """A preset of a loaded soundfont: bank, program, name."""

    bank: int
    program: int
    name: str


class FluidRenderer:
    """FluidSynth with soundfonts loaded, rendering one part at a time.

    soundfonts: .sf2 files; parts name them by index. Not thread-safe: one per process.

    A FluidSynth voice keeps some state (filter memory) from one note to the next use of its
    slot, so output depends on what was played before. `begin_song` therefore starts each song
    on a fresh synthesizer; it is cheap because a second, never-playing synthesizer keeps the
    soundfonts loaded and FluidSynth shares their sample data between synthesizers.
    """

    def __init__(self, soundfonts: tuple[Path, ...]) -> None:
        self.lib = load_library()
        for level in _LOG_LEVELS_SILENCED:
            self.lib.fluid_set_log_function(level, None, None)
        self.soundfonts = soundfonts
        self._keeper, self._keeper_settings, keeper_ids = self._new_synth()
        self.presets = [self._list_presets(self._keeper, font_id) for font_id in keeper_ids]
        self._synth: int | None = None
        self._settings: int | None = None
        self._font_ids: list[int] = []
        self._buffer = np.zeros((BLOCK * 16, 2), dtype=np.float32)

    def _new_synth(self) -> tuple[int, int, list[int]]:
        settings = self.lib.new_fluid_settings()
        self.lib.fluid_settings_setnum(settings, b"synth.sample-rate", float(SAMPLE_RATE))
        self.lib.fluid_settings_setnum(settings, b"synth.gain", SYNTH_GAIN)
        self.lib.fluid_settings_setint(settings, b"synth.reverb.active", 0)
        self.lib.fluid_settings_setint(settings, b"synth.chorus.active", 0)
        self.lib.fluid_settings_setint(settings, b"synth.polyphony", 256)
        self.lib.fluid_settings_setint(settings, b"synth.cpu-cores", 1)
        synth = self.lib.new_fluid_synth(settings)
        font_ids = []
        for path in self.soundfonts:
            font_id = self.lib.fluid_synth_sfload(synth, str(path).encode(), 0)
            if font_id < 0:
                raise BadInput(f"{path}: FluidSynth cannot load this soundfont")
            font_ids.append(font_id)
        return synth, settings, font_ids

    def begin_song(self) -> None:
        """Start on a fresh synthesizer, so a song sounds the same whatever came before it."""
        self._drop_synth()
        self._synth, self._settings, self._font_ids = self._new_synth()

    def _drop_synth(self) -> None:
        if self._synth:
            self.lib.delete_fluid_synth(self._synth)
            self.lib.delete_fluid_settings(self._settings)
        self._synth = self._settings = None

    def _list_presets(self, synth: int, font_id: int) -> dict[tuple[int, int], Preset]:
        font = self.lib.fluid_synth_get_sfont_by_id(synth, font_id)
        self.lib.fluid_sfont_iteration_start(font)
        out: dict[tuple[int, int], Preset] = {}
        while True:
            preset = self.lib.fluid_sfont_iteration_next(font)
            if not preset:
                break
            bank = self.lib.fluid_preset_get_banknum(preset)
            program = self.lib.fluid_preset_get_num(preset)
            name = (self.lib.fluid_preset_get_name(preset) or b"").decode(errors="replace")
            out[(bank, program)] = Preset(bank, program, name)
        return out

    def resolve(self, soundfont: int, bank: int, program: int) -> tuple[int, Preset]:
        """The (soundfont index, preset) that plays (bank, program): the asked soundfont if it has
        it, else another one, else the nearest standard preset (program 0 of the bank)."""
        order = [soundfont % len(self.soundfonts)] + [i for i in range(len(self.soundfonts)) if i != soundfont]
        for want in ((bank, program), (bank, 0), (0, program) if bank != 128 else (128, 0), (0, 0)):
            for i in order:
                preset = self.presets[i].get(want)
                if preset is not None:
                    return i, preset
        raise BadInput(f"{self.soundfonts[soundfont]}: no General MIDI presets in this soundfont")

    def close(self) -> None:
        self._drop_synth()
        if self._keeper:
            self.lib.delete_fluid_synth(self._keeper)
            self.lib.delete_fluid_settings(self._keeper_settings)
            self._keeper = None

    def _write(self, out: np.ndarray, start: int, n: int) -> None:
        pointer = out.ctypes.data + start * 2 * 4
        self.lib.fluid_synth_write_float(self._synth, n, pointer, 0, 2, pointer, 1, 2)

    def _settle(self) -> None:
        """Silence everything and run until no voice is left, so the next part starts clean."""
        self.lib.fluid_synth_all_sounds_off(self._synth, -1)
        self.lib.fluid_synth_system_reset(self._synth)
        for _ in range(1000):
            self._write(self._buffer, 0, len(self._buffer))
            if self.lib.fluid_synth_get_active_voice_count(self._synth) == 0:
                break
        self._write(self._buffer, 0, len(self._buffer))

    def render(
        self,
        notes: tuple[Note, ...] | list[Note],
        n_samples: int,
        soundfont: int,
        bank: int,
        program: int,
        drums: bool = False,
        controls: tuple[tuple[int, int], ...] = (),
    ) -> tuple[np.ndarray, Preset]:
        """Play `notes` with one preset. Returns (float32 (n_samples, 2), the preset used).

        drums: play on the GM percussion channel (bank 128 kits). controls: (CC number, value)
        set before the first note (e.g. 7 volume, 74 brightness).
        """
        if not self._synth:
            self.begin_song()
        channel = DRUM_CHANNEL if drums else 0
        index, preset = self.resolve(soundfont, 128 if drums else bank, program)
        self._settle()
        if self.lib.fluid_synth_program_select(self._synth, channel, self._font_ids[index], preset.bank,
                                               preset.program) != 0:
            raise BadInput(f"{self.soundfonts[index]}: cannot select preset {preset.bank}:{preset.program}")
        for cc, value in ((7, 110), (10, 64), (11, 127), (91, 0), (93, 0), *controls):
            self.lib.fluid_synth_cc(self._synth, channel, cc, value)
        events: list[tuple[int, int, int, int]] = []  # (block, kind, key, velocity)
        sounding: dict[int, int] = {}  # pitch → index of its pending note-off in events
        for note in sorted(notes, key=lambda n: (n.start_s, n.pitch)):
            on = int(note.start_s * SAMPLE_RATE) // BLOCK
            off = max(on + 1, int(note.end_s * SAMPLE_RATE) // BLOCK)
            pitch = int(np.clip(note.pitch, 0, 127))
            if pitch in sounding and events[sounding[pitch]][0] > on:  # the same key again: end the old note
                events[sounding[pitch]] = (on, NOTE_OFF, pitch, 0)
            events.append((on, NOTE_ON, pitch, int(np.clip(note.velocity, 1, 127))))
            sounding[pitch] = len(events)
            events.append((off, NOTE_OFF, pitch, 0))
        events.sort()  # note-offs (kind 0) before note-ons at the same block: repeated notes retrigger
        padded = -(-n_samples // BLOCK) * BLOCK
        out = np.zeros((padded, 2), dtype=np.float32)
        position = 0
        for block, kind, key, velocity in events:
            at = min(block * BLOCK, padded)
            if at > position:
                self._write(out, position, at - position)
                position = at
            if position >= padded:
                break
            if kind == NOTE_ON:
                self.lib.fluid_synth_noteon(self._synth, channel, key, velocity)
            else:
                self.lib.fluid_synth_noteoff(self._synth, channel, key)
        if position < padded:
            self._write(out, position, padded - position)
        return out[:n_samples], preset


_RENDERER: FluidRenderer | None = None


def shared_renderer(soundfonts: tuple[Path, ...]) -> FluidRenderer:
    """This process's renderer for `soundfonts` (created on first use, kept for later songs)."""
    global _RENDERER
    if _RENDERER is None or _RENDERER.soundfonts != soundfonts:
        if _RENDERER is not None:
            _RENDERER.close()
        _RENDERER = FluidRenderer(soundfonts)
    return _RENDERER
