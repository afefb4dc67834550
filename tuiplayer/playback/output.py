"""Sound output through PortAudio (sounddevice).

`AudioOutput` owns one sounddevice OutputStream whose callback asks a `source` for each buffer
of frames. The callback runs on PortAudio's thread: it must not allocate, lock or block, so a
source fills the buffer it is given in place (`fill(out) -> bool`, False when it has nothing
more to play). sounddevice is imported when an output is opened, never at import time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from tuiplayer.config import SIGNAL
from tuiplayer.errors import TuiplayerError

BLOCK_FRAMES = 512
"""Frames per audio buffer (11.6 ms at 44.1 kHz): a fader move is applied from the next buffer
on, ramped over it (DESIGN.md §3)."""

UNDERFLOWS_KEPT = 8
"""How many underflows' times an output keeps for its report."""

LATENCY_S = float(os.environ.get("TUIPLAYER_LATENCY_S", "0.05"))
"""Sound buffered ahead of the speakers (seconds), as asked of PortAudio. A fader move is
heard after at most one buffer plus this (≈ 62 ms). Measured with `bench --player` (a 60 s
song, PulseAudio null sink, this 2-core machine, 2026-12-02): 25 ms ran dry 5-23 times a
minute (and each time PulseAudio held the stream back up to ~2 s), 40 ms 0 times with
512-frame buffers but 4 with 256, 50 ms 0 times; the same 25 ms underflowed with the stems
all from the cache, so it is the machine's scheduling jitter, not the separation's load.
The callback runs in a process of its own (playback.process): in the screen's process it
waited for the GIL. TUIPLAYER_LATENCY_S overrides it."""


class AudioDeviceError(TuiplayerError):
    """No usable output device (none at all, a wrong --device, PortAudio missing)."""

    exit_code = 2


class Source(Protocol):
    def fill(self, out: np.ndarray) -> bool:
        """Write the next len(out) frames into out (frames, 2) float32; False when finished."""
        ...


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as error:  # the PortAudio library itself is missing
        raise AudioDeviceError(f"no sound output: PortAudio is not installed ({error}); "
                               "install the Debian package libportaudio2") from None
    return sounddevice


@dataclass(frozen=True)
class OutputChoice:
    """The output the player plays through: PortAudio's index, its name, and why it."""

    index: int
    name: str
    why: str


def choose_output(device: int | str | None = None) -> OutputChoice:
    """The output to use: the one asked for; else, when PULSE_SERVER names a (forwarded) sound
    server, ALSA's `pulse` device, which sends the sound there (Debian's PortAudio has no
    PulseAudio backend of its own); else PortAudio's default. AudioDeviceError (one line)
    when there is none."""
    sd = _sounddevice()
    why = "asked for with --device"
    if device is None and os.environ.get("PULSE_SERVER"):
        names = [d["name"] for d in sd.query_devices() if d["max_output_channels"] > 0]
        if "pulse" in names:
            device, why = "pulse", f"PULSE_SERVER={os.environ['PULSE_SERVER']}: ALSA's pulse plugin plays there"
    elif device is None:
        why = "the system's default output"
    try:
        info = sd.query_devices(device, kind="output")
    except (ValueError, sd.PortAudioError) as error:
        what = "no default sound output device" if device is None else f"no sound output device {device!r}"
        raise AudioDeviceError(f"{what} ({error}); try --device or --no-audio") from None
    return OutputChoice(int(info["index"]), str(info["name"]), why)


def list_outputs() -> list[tuple[int, str, str, int]]:
    """Every output PortAudio sees: (index, name, host API, channels)."""
    sd = _sounddevice()
    apis = [api["name"] for api in sd.query_hostapis()]
    return [(i, str(d["name"]), apis[d["hostapi"]], int(d["max_output_channels"]))
            for i, d in enumerate(sd.query_devices()) if d["max_output_channels"] > 0]


SETTLE_S = 3.0
"""The longest wait is counted from this long after the start (the first callbacks come
irregularly while the stream and the sound server start)."""


class OutputStats:
    """What an output's callbacks did, for the log line at exit: buffers, underflows (the first
    UNDERFLOWS_KEPT with their time and the wait before them), the slowest callback (our own
    work per buffer) and the longest wait between two callbacks (how late PortAudio, and the
    sound server behind it, came back). The two tell an underflow of ours from one of the
    scheduler's or the server's. Times on time.monotonic(): the same clock in every process of
    the machine, so a test can place them against what it recorded."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.buffers = self.underflows = 0
        self.underflow_at = np.zeros(UNDERFLOWS_KEPT, dtype=np.float64)
        self.underflow_gap = np.zeros(UNDERFLOWS_KEPT, dtype=np.float64)
        self.slowest = (0.0, 0.0)  # (seconds, when)
        self.longest_gap = (0.0, 0.0)
        self._last_call = 0.0

    def record(self, called: float, underflow: bool) -> None:
        """One callback, called at `called`, now done; underflow: PortAudio said it ran dry."""
        took = self.clock() - called
        gap = called - self._last_call if self._last_call else 0.0
        self._last_call = called
        self.buffers += 1
        if underflow:
            if self.underflows < UNDERFLOWS_KEPT:
                self.underflow_at[self.underflows] = called
                self.underflow_gap[self.underflows] = gap
            self.underflows += 1
        if gap > self.longest_gap[0] and called - self.started > SETTLE_S:
            self.longest_gap = (gap, called)
        if took > self.slowest[0]:
            self.slowest = (took, called)

    def report(self) -> str:
        """One line: buffers played, underflows (when, in seconds since the start, after what
        wait), the slowest callback and the longest wait, and the start (time.monotonic())."""
        line = f"{self.buffers} buffers played, {self.underflows} underflows"
        if self.underflows:
            kept = self.underflow_at[: min(self.underflows, UNDERFLOWS_KEPT)] - self.started
            line += " (at " + ", ".join(f"{t:.2f}" for t in kept) + " s; after waits of " + ", ".join(
                f"{1000 * g:.0f}" for g in self.underflow_gap[: len(kept)]) + " ms)"
        if self.buffers:
            line += f"; slowest callback {1000 * self.slowest[0]:.1f} ms (at {self.slowest[1] - self.started:.2f} s)"
        if self.longest_gap[0]:
            line += (f", longest wait between callbacks {1000 * self.longest_gap[0]:.1f} ms "
                     f"(at {self.longest_gap[1] - self.started:.2f} s)")
        return line + f"; started at monotonic {self.started:.3f}"


class AudioOutput:
    """A running output stream that plays what `source` gives, until it is finished or closed."""

    def __init__(self, source: Source, device: int | str | None = None,
                 sample_rate: int = SIGNAL.sample_rate, block_frames: int = BLOCK_FRAMES,
                 latency: float = LATENCY_S) -> None:
        sd = _sounddevice()
        self.source = source
        self.stats = OutputStats()
        self.block_frames = block_frames
        self.sample_rate = sample_rate
        self.choice = choose_output(device)
        try:
            self.stream = sd.OutputStream(
                samplerate=sample_rate, blocksize=block_frames, device=self.choice.index, latency=latency,
                channels=2, dtype="float32", callback=self._callback,
            )
            self.stream.start()
        except sd.PortAudioError as error:
            raise AudioDeviceError(f"cannot open the sound output ({error}); try --device or --no-audio") from None

    def _callback(self, out: np.ndarray, frames: int, when: Any, status: Any) -> None:
        called = self.stats.clock()
        more = self.source.fill(out)
        self.stats.record(called, bool(status.output_underflow))
        if not more:
            raise _sounddevice().CallbackStop

    def report(self) -> str:
        return self.stats.report()

    def describe(self) -> str:
        """Which output plays, and its latency as PortAudio reports it, for the window."""
        return f"{self.choice.name}, {1000 * float(self.stream.latency):.0f} ms"

    def close(self) -> None:
        self.stream.abort()
        self.stream.close()
