"""Sound output through PortAudio (sounddevice).

`AudioOutput` owns one sounddevice OutputStream whose callback asks a `source` for each buffer
of frames. The callback runs on PortAudio's thread: it must not allocate, lock or block, so a
source fills the buffer it is given in place (`fill(out) -> bool`, False when it has nothing
more to play). sounddevice is imported when an output is opened, never at import time.
"""

from __future__ import annotations

import os
import time
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


def output_device(device: int | str | None = None) -> int:
    """The PortAudio index of the output to use (the default one when device is None)."""
    sd = _sounddevice()
    try:
        info = sd.query_devices(device, kind="output")
    except (ValueError, sd.PortAudioError) as error:
        what = "no default sound output device" if device is None else f"no sound output device {device!r}"
        raise AudioDeviceError(f"{what} ({error}); try --device or --no-audio") from None
    return int(info["index"])


class AudioOutput:
    """A running output stream that plays what `source` gives, until it is finished or closed."""

    def __init__(self, source: Source, device: int | str | None = None,
                 sample_rate: int = SIGNAL.sample_rate, block_frames: int = BLOCK_FRAMES) -> None:
        sd = _sounddevice()
        self.source = source
        self.buffers = 0
        self.underflows = 0
        """Buffers played, and how many times the output ran dry (PortAudio's output underflow)."""
        self.underflow_at = np.zeros(UNDERFLOWS_KEPT, dtype=np.float64)
        """When the first UNDERFLOWS_KEPT underflows came (time.monotonic(): the same clock in
        every process of the machine, so a test can place them against what it recorded)."""
        self.clock = time.monotonic
        self.started = self.clock()
        self.block_frames = block_frames
        self.sample_rate = sample_rate
        try:
            self.stream = sd.OutputStream(
                samplerate=sample_rate, blocksize=block_frames, device=output_device(device), latency=LATENCY_S,
                channels=2, dtype="float32", callback=self._callback,
            )
            self.stream.start()
        except sd.PortAudioError as error:
            raise AudioDeviceError(f"cannot open the sound output ({error}); try --device or --no-audio") from None

    def _callback(self, out: np.ndarray, frames: int, when: Any, status: Any) -> None:
        self.buffers += 1
        if status.output_underflow:
            if self.underflows < UNDERFLOWS_KEPT:
                self.underflow_at[self.underflows] = self.clock()
            self.underflows += 1
        if not self.source.fill(out):
            raise _sounddevice().CallbackStop

    def report(self) -> str:
        """One line for the log: buffers played, underflows, when the first ones came (seconds
        since the stream started), and when it started (time.monotonic())."""
        line = f"{self.buffers} buffers played, {self.underflows} underflows"
        if self.underflows:
            kept = self.underflow_at[: min(self.underflows, UNDERFLOWS_KEPT)] - self.started
            line += " (at " + ", ".join(f"{t:.2f}" for t in kept) + " s)"
        return line + f"; started at monotonic {self.started:.3f}"

    def close(self) -> None:
        self.stream.abort()
        self.stream.close()
