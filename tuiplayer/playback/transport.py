"""The transport of one song: its playhead and mix settings, and where its sound goes.

One shared control array (playback.process) holds the mix the user set (a `MixSnapshot`),
seeks, the playhead and whether the song has ended: the screen writes the mix and seeks, the
sound writes the playhead, the separation process reads the playhead and the active model.

The sound comes from a sound process (`AudioProcess`, PortAudio in a child) — or, with
--no-audio, with no device, or once that process stops (a device unplugged), from a
`SilentClock` in this process, which runs the same mixer over the same control array in real
time and drops the sound: the playhead goes on from where it was. `Transport` owns that
choice and that fallback; the player only reads and writes the transport.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from tuiplayer.config import SIGNAL
from tuiplayer.errors import TuiplayerError
from tuiplayer.playback.mixer import Mixer, MixSnapshot
from tuiplayer.playback.output import BLOCK_FRAMES, LATENCY_S
from tuiplayer.playback.process import (
    ENDED,
    POSITION,
    SEEK_COUNT,
    SEEK_TARGET,
    AudioProcess,
    ControlledMixer,
    new_control,
    write_snapshot,
)
from tuiplayer.playback.stretch import TEMPO_MAX
from tuiplayer.stems import StemBuffers


class SilentClock:
    """Stands in for a sound card: pulls buffers from the mixer in real time and drops them,
    at the snapshot's tempo (a buffer of wall time holds tempo × as much of the song)."""

    def __init__(self, source: ControlledMixer, block_frames: int = BLOCK_FRAMES) -> None:
        self.source = source
        self._buffer = np.zeros((int(block_frames * TEMPO_MAX) + 1, 2), dtype=np.float32)
        self._block_frames = block_frames
        self._period = block_frames / SIGNAL.sample_rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="silent-clock", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        due, owed = time.perf_counter(), 0.0  # (song frames not yet played: fractions add up)
        while not self._stop.is_set():
            self.source.take_control()
            owed += self._block_frames * self.source.snapshot.tempo
            frames = int(owed)
            owed -= frames
            self.source.render(self._buffer[:frames])
            due += self._period
            self._stop.wait(max(0.0, due - time.perf_counter()))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)


class Transport:
    """Plays `audio` (n_samples, 2) float32 remixed from `stems` (one StemBuffers per model, in
    shared memory): set `snapshot`, `seek`; read `position`, `ended`. `start` opens the sound."""

    def __init__(self, audio: np.ndarray, stems: list[StemBuffers]) -> None:
        self.audio = audio
        self.stems = stems
        self.control = new_control()
        self.output: AudioProcess | SilentClock | None = None
        self.error: str | None = None
        """Why the sound could not be opened (None when it plays, or was not asked for)."""
        self.note = ""
        """What the window says about the sound when it is not heard ("" while it is)."""
        self._snapshot = MixSnapshot()

    def start(self, device: int | str | None = None, sound: bool = True, latency: float = LATENCY_S) -> None:
        """Open the sound: a sound process (it forks: call this before threads start where
        possible), else the silent clock, with `error` and `note` saying why."""
        if sound:
            try:
                self.output = AudioProcess(self.audio, self.stems, self.control, device, latency)
                return
            except TuiplayerError as error:
                self.error = str(error)
                self.note = f"{error} — playing silently"
        self._silent()

    @property
    def audible(self) -> bool:
        """Whether the sound is heard (a sound process plays it), not only clocked."""
        return isinstance(self.output, AudioProcess)

    @property
    def description(self) -> str:
        """What plays the sound, for the window: the output and its latency, or the silent clock."""
        if isinstance(self.output, AudioProcess):
            return self.output.description
        return "no sound (silent clock)"

    def _silent(self) -> None:
        mixer = Mixer(self.audio, list(self.stems))
        mixer.position = int(self.control[POSITION])
        self.output = SilentClock(ControlledMixer(mixer, self.control))

    def check(self) -> str | None:
        """Call on a timer: if the sound process stopped on its own (a device unplugged, a
        dead process), carry on with the silent clock from the same playhead and return the
        notice to show (once); None while all is well."""
        if not (isinstance(self.output, AudioProcess) and self.output.stalled()):
            return None
        threading.Thread(target=self.output.close, daemon=True).start()  # (it may take a while)
        self._silent()
        self.note = "the sound output stopped (device unplugged?) — playing silently"
        return self.note

    @property
    def pid(self) -> int | None:
        """The sound process's id (None when the sound is not a process)."""
        return self.output.pid if isinstance(self.output, AudioProcess) else None

    @property
    def snapshot(self) -> MixSnapshot:
        return self._snapshot

    @snapshot.setter
    def snapshot(self, snapshot: MixSnapshot) -> None:
        write_snapshot(self.control, snapshot)
        self._snapshot = snapshot

    def seek(self, sample: int) -> None:
        """Move the playhead to `sample` (the sound takes it at its next buffer; `position`
        says it at once)."""
        self.control[SEEK_TARGET] = sample
        self.control[SEEK_COUNT] += 1
        self.control[POSITION] = sample

    @property
    def position(self) -> int:
        """The playhead in samples: the first sample of the next buffer."""
        return int(self.control[POSITION])

    @property
    def ended(self) -> bool:
        return bool(self.control[ENDED])

    def close(self) -> None:
        if self.output is not None:
            self.output.close()
            self.output = None
