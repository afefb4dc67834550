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

LATENCY_S = 0.05
"""Sound buffered ahead of the speakers (seconds), as asked of PortAudio, for a sound server on
this machine. A fader move is heard after at most one buffer plus this (≈ 62 ms). Measured with
`bench --player` (a 60 s song, PulseAudio null sink, this 2-core machine, 2026-12-02): 25 ms
ran dry 5-23 times a minute (and each time PulseAudio held the stream back up to ~2 s), 40 ms
0 times with 512-frame buffers but 4 with 256, 50 ms 0 times; the same 25 ms underflowed with
the stems all from the cache, so it is the machine's scheduling jitter, not the separation's
load. The callback runs in a process of its own (playback.process): in the screen's process
it waited for the GIL."""

LINK_LATENCY_S = 0.10
"""The same for a sound server PULSE_SERVER names, which is usually another machine's over a
network link (SSH). Measured with `bench --link` (the real player through a relay to a
PulseAudio null sink, 60 s, 2026-12-03): with a 30 ms round trip and up to 10 ms of jitter,
50 ms had ~700 dropouts a minute, 75 ms and more none, quiet and beside a busy process; 100 ms
had none with up to 30 ms of jitter, beside a busy process, either."""


def pulse_server() -> str:
    """The sound server PULSE_SERVER names ("" when it is not set): usually another machine's,
    forwarded over SSH."""
    return os.environ.get("PULSE_SERVER", "").strip()


def default_latency() -> float:
    """The latency the player asks for when --latency does not say: LINK_LATENCY_S when
    PULSE_SERVER names the sound server, else LATENCY_S."""
    return LINK_LATENCY_S if pulse_server() else LATENCY_S


LOST_S = 3.0
"""No callback for this long: the output is lost. (PulseAudio holds a stream up to ~1.9 s after
an underflow, measured in the end-to-end test's private server: that is not a loss.)"""


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
    if device is None and pulse_server():
        names = [d["name"] for d in sd.query_devices() if d["max_output_channels"] > 0]
        if "pulse" in names:
            device, why = "pulse", f"PULSE_SERVER={pulse_server()}: ALSA's pulse plugin plays there"
        else:
            from tuiplayer.playback import pulse

            answers, said = pulse.reachable()
            raise AudioDeviceError(
                "ALSA's pulse plugin is missing (Debian: libasound2-plugins)" if answers
                else f"{said}: is the SSH tunnel up?")
    elif device is None:
        why = "the system's default output"
    try:
        info = sd.query_devices(device, kind="output")
    except (ValueError, sd.PortAudioError) as error:
        what = "no default sound output device" if device is None else f"no sound output device {device!r}"
        raise AudioDeviceError(f"{what} ({error}); try --device or --no-audio") from None
    return OutputChoice(int(info["index"]), str(info["name"]), why)


def refresh_outputs() -> None:
    """Have PortAudio look for outputs again (it lists them once, when it starts: a sound
    server that was not there then is not among them). Only while no stream is open."""
    sd = _sounddevice()
    sd._terminate()  # (sounddevice's own way to do it; there is no public one)
    sd._initialize()


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
        self.last_call = 0.0
        self.losses = 0

    def lost(self) -> None:
        """The output was lost (the next callback, from another stream, does not wait for this one)."""
        self.losses += 1
        self.last_call = 0.0

    def record(self, called: float, underflow: bool) -> None:
        """One callback, called at `called`, now done; underflow: PortAudio said it ran dry."""
        took = self.clock() - called
        gap = called - self.last_call if self.last_call else 0.0
        self.last_call = called
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
        if self.losses:
            line += f"; the output was lost {self.losses} time{'s' if self.losses > 1 else ''} and opened again"
        return line + f"; started at monotonic {self.started:.3f}"


class AudioOutput:
    """A running output stream that plays what `source` gives, until it is finished or closed."""

    def __init__(self, source: Source, device: int | str | None = None,
                 sample_rate: int = SIGNAL.sample_rate, block_frames: int = BLOCK_FRAMES,
                 latency: float | None = None, stats: OutputStats | None = None) -> None:
        """latency: seconds (None: default_latency()); stats: where the callbacks are counted
        (one across an output lost and opened again)."""
        sd = _sounddevice()
        self.source = source
        self.opened = time.monotonic()
        self.stats = stats or OutputStats()
        self.block_frames = block_frames
        self.sample_rate = sample_rate
        self.choice = choose_output(device)
        try:
            self.stream = sd.OutputStream(
                samplerate=sample_rate, blocksize=block_frames, device=self.choice.index,
                latency=default_latency() if latency is None else latency,
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

    def lost(self) -> bool:
        """Whether the stream has stopped on its own (PortAudio gave up on it, or no callback came
        for LOST_S: a sound server gone, a link down, a device unplugged)."""
        last = max(self.stats.last_call, self.opened)
        return not self.stream.active or self.stats.clock() - last > LOST_S

    def describe(self) -> str:
        """Which output plays, and its latency as PortAudio reports it, for the window."""
        return f"{self.choice.name}, {1000 * float(self.stream.latency):.0f} ms"

    def close(self) -> None:
        self.stream.abort()
        self.stream.close()
