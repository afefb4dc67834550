"""Tempo and pitch, live, for all stems together: Rubber Band's real-time stretcher between the
mixer and the speakers (DESIGN.md §3).

The mixer renders the remix at the song's own rate, in song time (its playhead, loop and seeks
are in the song's samples); `Stretched` pulls as much of it as Rubber Band needs for each
buffer the sound card asks for: at 80 % tempo, 0.8 of a buffer. Rubber Band (through `pylibrb`,
GPL-2.0-or-later) is an optional extra (`pip install 'tuiplayer[stretch]'`): without it the
player plays at 100 % and says so when a tempo or pitch key is pressed.

Chosen by measurement (docs/stretch-candidates-2026-12.md): the only candidate that streams
with live changes and no clicks; its R2 ("faster") engine costs ~6 % of a core at 80 % + 2
semitones on a stereo remix, and a change is heard ~25 ms after it is set, plus the output's
latency. Stretching the remix rather than each stem costs a quarter as much: a fader move then
passes through the stretcher too (~36 ms more) while a tempo or pitch is set.

The stretcher stays out of the path until a tempo or pitch other than 100 % / 0 is asked
for, then stays in it (back at 100 % it passes the sound through, ~50 dB clean) until the next
seek, where the sound jumps anyway. Each start drops Rubber Band's own start-up delay, so the
first sound out is the playhead's.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Protocol

import numpy as np

from tuiplayer.config import SIGNAL
from tuiplayer.playback.mixer import MixSnapshot

TEMPO_MIN, TEMPO_MAX = 0.5, 1.5
"""Tempo range (1.0 = the song's own)."""
SEMITONES_MAX = 6
"""Pitch range: ± this many semitones."""

FEED_FRAMES = 512
"""The remix is rendered and fed to the stretcher in pieces of at most this many frames."""

MISSING = "tempo and pitch need Rubber Band: pip install 'tuiplayer[stretch]' (pylibrb)"

_PITCH_HIGH_CONSISTENCY = 0x04000000
"""RubberBandStretcher::OptionPitchHighConsistency (for pitch that changes while playing);
missing from pylibrb's Option enum, accepted as a number."""


def available() -> bool:
    """Whether Rubber Band (pylibrb) is installed: tempo and pitch can be heard."""
    return importlib.util.find_spec("pylibrb") is not None


def clamp_tempo(tempo: float) -> float:
    return round(min(max(tempo, TEMPO_MIN), TEMPO_MAX), 2)


def clamp_semitones(semitones: int) -> int:
    return min(max(int(semitones), -SEMITONES_MAX), SEMITONES_MAX)


def is_unchanged(snapshot: MixSnapshot) -> bool:
    """Whether the snapshot asks for the song's own tempo and pitch."""
    return snapshot.tempo == 1.0 and snapshot.semitones == 0


class Controlled(Protocol):
    """The sound process's source (control.ControlledMixer): the user's settings, then the remix."""

    @property
    def snapshot(self) -> MixSnapshot: ...

    def take_control(self) -> bool:
        """Take the latest settings and seek; True when a seek was taken."""
        ...

    def render(self, out: np.ndarray) -> None:
        """The next len(out) frames of the remix, (frames, 2) float32, in song time."""
        ...


def new_stretcher(sample_rate: int = SIGNAL.sample_rate, channels: int = 2) -> Any:
    """A real-time Rubber Band stretcher (R2 engine, one thread, channels together)."""
    import pylibrb

    option = pylibrb.Option
    options = (int(option.PROCESS_REALTIME) | int(option.ENGINE_FASTER) | int(option.THREADING_NEVER)
               | int(option.CHANNELS_TOGETHER) | _PITCH_HIGH_CONSISTENCY)
    stretcher = pylibrb.RubberBandStretcher(sample_rate=sample_rate, channels=channels, options=options,
                                            initial_time_ratio=1.0, initial_pitch_scale=1.0)
    stretcher.set_max_process_size(FEED_FRAMES)
    return stretcher


class Stretched:
    """The sound card's source: `source`'s remix at the snapshot's tempo and pitch.

    Runs on PortAudio's thread, as the mixer does; Rubber Band has no lock of its own, so it is
    set and run here only.
    """

    def __init__(self, source: Controlled) -> None:
        self.source = source
        self._stretcher = new_stretcher()
        self._engaged = False
        self._set = (1.0, 0)  # (tempo, semitones) as last given to the stretcher
        self._drop = 0  # output frames still to drop after a start (the stretcher's own delay)
        self._piece = np.empty((FEED_FRAMES, 2), dtype=np.float32)
        self._silence = np.zeros((2, FEED_FRAMES), dtype=np.float32)

    def fill(self, out: np.ndarray) -> bool:
        """Write the next len(out) frames (frames, 2) float32 into out; always True."""
        source = self.source
        seeked = source.take_control()
        snapshot = source.snapshot
        wanted = (snapshot.tempo, snapshot.semitones)
        if seeked or not self._engaged:
            was_engaged, self._engaged = self._engaged, not is_unchanged(snapshot)
            if self._engaged:
                self._start(wanted)
                if not (seeked or was_engaged) and snapshot.playing:
                    self._cross_into(out)  # mid-song: no jump in the sound
                    return True
        if not self._engaged:
            source.render(out)
            return True
        if not snapshot.playing:  # paused: the stretcher keeps what it holds for the resume
            out[:] = 0.0
            return True
        if wanted != self._set:
            self._set_ratios(wanted)
        self._pull(out)
        return True

    def restart(self) -> None:
        """The playhead went on without the stretcher (the silent clock ran the source): forget
        what it holds; the next buffer starts it afresh where the playhead is."""
        self._engaged = False

    def _cross_into(self, out: np.ndarray) -> None:
        """The first buffer through the stretcher: from the playhead the song's own sound,
        which is also the stretcher's first input, fades into the stretched sound over the
        buffer (without it, the new pitch's first wave meets the old one's last: a click)."""
        self.source.render(out)
        own = out.copy()
        for start in range(0, len(out), FEED_FRAMES):
            self._stretcher.process(own[start : start + FEED_FRAMES].T)
        self._pull(out)
        fade = np.linspace(0.0, 1.0, len(out), dtype=np.float32)[:, None]
        out *= fade
        out += own * (1.0 - fade)

    def _set_ratios(self, wanted: tuple[float, int]) -> None:
        self._stretcher.time_ratio = 1.0 / wanted[0]
        self._stretcher.pitch_scale = 2.0 ** (wanted[1] / 12)
        self._set = wanted

    def _start(self, wanted: tuple[float, int]) -> None:
        """From the playhead on, at tempo and pitch `wanted`: empty, primed with Rubber Band's
        preferred start pad of silence, its start-up delay to be dropped from what comes out."""
        stretcher = self._stretcher
        stretcher.reset()
        self._set_ratios(wanted)
        pad = int(stretcher.get_preferred_start_pad())
        while pad > 0:
            count = min(pad, FEED_FRAMES)
            stretcher.process(self._silence[:, :count])
            pad -= count
        self._drop = int(stretcher.get_start_delay())

    def _pull(self, out: np.ndarray) -> None:
        stretcher, frames = self._stretcher, len(out)
        while self._drop or stretcher.available() < frames:
            if self._drop and stretcher.available():
                self._drop -= len(stretcher.retrieve(min(self._drop, stretcher.available()))[0])
                continue
            need = int(stretcher.get_samples_required()) or FEED_FRAMES
            piece = self._piece[: min(need, FEED_FRAMES)]
            self.source.render(piece)
            stretcher.process(piece.T)  # (pylibrb takes (channels, frames))
        out[:] = stretcher.retrieve(frames).T


RENDER_PIECE = 65536
"""Frames per call when a whole remix is stretched offline (render)."""


def render(samples: np.ndarray, tempo: float, semitones: int) -> np.ndarray:
    """samples (n, 2) float32 at `tempo` and `semitones`, stretched offline (for an export): Rubber
    Band's R3 ("finer") engine, which studies the whole first — better than the live sound's R2.
    Returns (≈ n / tempo, 2) float32."""
    import pylibrb

    option = pylibrb.Option
    options = (int(option.PROCESS_OFFLINE) | int(option.ENGINE_FINER) | int(option.THREADING_NEVER)
               | int(option.CHANNELS_TOGETHER))
    stretcher = pylibrb.RubberBandStretcher(sample_rate=SIGNAL.sample_rate, channels=samples.shape[1],
                                            options=options, initial_time_ratio=1.0 / tempo,
                                            initial_pitch_scale=2.0 ** (semitones / 12))
    stretcher.set_expected_input_duration(len(samples))
    stretcher.set_max_process_size(RENDER_PIECE)
    planar = np.ascontiguousarray(samples.T, dtype=np.float32)
    starts = range(0, len(samples), RENDER_PIECE)
    for start in starts:
        stretcher.study(planar[:, start : start + RENDER_PIECE], final=start + RENDER_PIECE >= len(samples))
    pieces = []
    for start in starts:
        stretcher.process(planar[:, start : start + RENDER_PIECE], final=start + RENDER_PIECE >= len(samples))
        pieces.append(stretcher.retrieve_available())
    while (left := stretcher.available()) > 0:
        pieces.append(stretcher.retrieve(left))
    return np.ascontiguousarray(np.concatenate(pieces, axis=1).T)
