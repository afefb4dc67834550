"""Sound output through PortAudio (sounddevice).

`AudioOutput` owns one sounddevice OutputStream whose callback asks a `source` for each buffer
of frames. The callback runs on PortAudio's thread: it must not allocate, lock or block, so a
source fills the buffer it is given in place (`fill(out) -> bool`, False when it has nothing
more to play). sounddevice is imported when an output is opened, never at import time.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import numpy as np

from tuiplayer.config import SIGNAL
from tuiplayer.errors import TuiplayerError

BLOCK_FRAMES = 1024
"""Frames per audio buffer (23 ms at 44.1 kHz): faders act within one buffer (DESIGN.md §3)."""

LATENCY_S = float(os.environ.get("TUIPLAYER_LATENCY_S", "0.2"))
"""Sound buffered ahead of the speakers (seconds). The callback runs Python, so it waits
whenever the screen's thread holds the GIL (drawing, garbage collection). Measured through
PulseAudio in the end-to-end test: PortAudio's "high" latency (46 ms) and 0.1 s both left
70–120 ms gaps of silence every couple of seconds; 0.2 s left none. A fader move is heard
after this plus one buffer. TUIPLAYER_LATENCY_S overrides it."""


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
        try:
            self.stream = sd.OutputStream(
                samplerate=sample_rate, blocksize=block_frames, device=output_device(device), latency=LATENCY_S,
                channels=2, dtype="float32", callback=self._callback,
            )
            self.stream.start()
        except sd.PortAudioError as error:
            raise AudioDeviceError(f"cannot open the sound output ({error}); try --device or --no-audio") from None

    def _callback(self, out: np.ndarray, frames: int, time: Any, status: Any) -> None:
        if not self.source.fill(out):
            raise _sounddevice().CallbackStop

    def close(self) -> None:
        self.stream.abort()
        self.stream.close()
