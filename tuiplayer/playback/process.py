"""The audio callback in a process of its own (DESIGN.md §3, §4).

In the player's process the callback shares the GIL with Textual, which draws the screen in
Python. Measured with the end-to-end test (PulseAudio null sink, 50 ms of output latency): a
thread that sleeps 1 ms woke 40-90 ms late every second or two while the screen was drawn,
with no garbage collection running, and each time the sound had a gap. So the sound comes from
a forked child process whose only busy thread is PortAudio's callback:

- the song (n_samples, 2) float32 is the child's copy-on-write view of the parent's array;
- each model's stems (`tuiplayer.stems.StemBuffers`) live in anonymous shared memory made
  before the fork: the separation process writes them, the child's `Mixer` reads them (a block
  only writes samples that are not ready yet, so no locks are needed);
- the mix settings (a `MixSnapshot`), seeks and the playhead go through the transport's small
  shared float64 control array: the screen writes the snapshot under a sequence counter (odd
  while it writes), the child takes it at the start of a buffer when the counter is even and
  unchanged across its read; the separation process reads the playhead and the active model;
- tempo and pitch are the last step, after the mixer (`playback.stretch`), here too.

`playback.transport.Transport` owns the control array and this process (and its fallback).
Linux and macOS fork; the child ends when asked, or when the parent's end of the pipe closes.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from tuiplayer.playback import stretch
from tuiplayer.playback.mixer import Mixer, MixSnapshot
from tuiplayer.playback.output import LATENCY_S, AudioDeviceError, AudioOutput
from tuiplayer.stems import StemBuffers, shared_zeros

# slots of the control array
SEQUENCE, MODEL, PLAYING, LOOP_START, LOOP_STOP, SEEK_COUNT, SEEK_TARGET, POSITION, ENDED, TEMPO, SEMITONES = range(11)
GAINS = slice(11, 15)
CONTROL_SLOTS = 15

START_TIMEOUT_S = 10.0
"""How long the parent waits for the child to open the sound output."""

STALL_S = 5.0
"""Playing, with the playhead still for this long: the sound output has stopped (a device
unplugged or switched off, a dead child). PulseAudio can hold a stream ~1.4 s as it starts,
and ~1.9 s after an underflow (measured in the end-to-end test's private server)."""

SOUND_RT_PRIORITY = 10
"""The sound process's real-time (SCHED_RR) priority, where it may have one: root, or a user
whose RLIMIT_RTPRIO allows it (many distributions grant the `audio` group 95). Below the
sound server's own threads (rtkit gives PulseAudio and PipeWire up to 20)."""
SOUND_NICE = -10
"""Else its nice value, where RLIMIT_NICE allows it."""


def _raise_priority() -> None:
    """Give this process (and the threads it starts: PortAudio's and the sound server client's)
    the CPU before anything else, as far as it is allowed. Measured with the end-to-end test
    beside three busy processes on 2 cores: at nice 0, 4 of 4 runs had gaps; at nice -10, 5 of
    5 (22-37 ms of silence, "3 underflows"); under SCHED_RR, 4 of 5 had none and one had a
    single underflow. The kernel keeps 5 % of each second from real-time threads, so even a
    runaway callback cannot freeze the machine."""
    if hasattr(os, "sched_setscheduler"):  # (Linux)
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(SOUND_RT_PRIORITY))
            return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, SOUND_NICE)


def name_process(name: str) -> None:
    """Give this (forked) process its own name, as `top`, `ps -o comm` and the bench see it."""
    with contextlib.suppress(OSError), open("/proc/self/comm", "w", encoding="ascii") as comm:
        comm.write(name[:15])


def fork_child(target: Callable[..., None], args: tuple[Any, ...], name: str) -> tuple[Any, Connection]:
    """Fork a daemon child running target(child_end, parent_end, *args): (the process, our end
    of its pipe). The child must close parent_end, so that our death reads as EOF there."""
    context = multiprocessing.get_context("fork")
    parent_end, child_end = context.Pipe()
    process = context.Process(target=target, args=(child_end, parent_end, *args), name=name, daemon=True)
    process.start()
    child_end.close()
    return process, parent_end


def new_control() -> np.ndarray:
    """The shared control array, with the default snapshot in it."""
    control = shared_zeros((CONTROL_SLOTS,), np.float64)
    write_snapshot(control, MixSnapshot())
    return control


class ControlledMixer:
    """The child's source: applies the parent's snapshot and seeks, fills, reports the playhead."""

    def __init__(self, mixer: Mixer, control: np.ndarray) -> None:
        """control: the CONTROL_SLOTS shared array (see write_snapshot)."""
        self.mixer = mixer
        self.control = control
        self._sequence = -1.0
        self._seeks = control[SEEK_COUNT]

    @property
    def snapshot(self) -> MixSnapshot:
        """The settings the mixer plays by (as of the last take_control)."""
        return self.mixer.snapshot

    def take_control(self) -> bool:
        """Take the parent's latest snapshot and seek; True when there was a seek."""
        control = self.control
        sequence = control[SEQUENCE]
        if sequence != self._sequence and sequence % 2 == 0:
            snapshot = _read_snapshot(control)
            if control[SEQUENCE] == sequence:  # not torn by a write in between
                self.mixer.snapshot, self._sequence = snapshot, sequence
        if control[SEEK_COUNT] == self._seeks:
            return False
        self._seeks = control[SEEK_COUNT]
        self.mixer.seek_to = int(control[SEEK_TARGET])
        return True

    def render(self, out: np.ndarray) -> None:
        """The next len(out) frames of the remix into out (frames, 2), and the playhead reported."""
        self.mixer.fill(out)
        self.control[POSITION] = self.mixer.position
        self.control[ENDED] = self.mixer.ended

    def fill(self, out: np.ndarray) -> bool:
        """As an output's source at the song's own tempo."""
        self.take_control()
        self.render(out)
        return True


def write_snapshot(control: np.ndarray, snapshot: MixSnapshot) -> None:
    """Publish snapshot in control (one writer): the sequence is odd while the fields change."""
    control[SEQUENCE] += 1
    control[GAINS] = snapshot.gains
    control[MODEL] = snapshot.model
    control[PLAYING] = snapshot.playing
    control[LOOP_START], control[LOOP_STOP] = snapshot.loop if snapshot.loop else (-1, -1)
    control[TEMPO], control[SEMITONES] = snapshot.tempo, snapshot.semitones
    control[SEQUENCE] += 1


def _read_snapshot(control: np.ndarray) -> MixSnapshot:
    loop = None if control[LOOP_START] < 0 else (int(control[LOOP_START]), int(control[LOOP_STOP]))
    return MixSnapshot(gains=tuple(control[GAINS].tolist()), model=int(control[MODEL]),
                       playing=bool(control[PLAYING]), loop=loop, tempo=float(control[TEMPO]),
                       semitones=int(control[SEMITONES]))


def _serve(connection: Connection, parent_end: Connection, audio: np.ndarray, stems: list[StemBuffers],
           control: np.ndarray, device: int | str | None, latency: float) -> None:
    """The child: play until told to stop or the parent is gone."""
    parent_end.close()  # (inherited by the fork: open here, the parent's death would never read as EOF)
    name_process("tuiplayer-sound")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the sound ends
    gc.freeze()  # the parent's objects: never walked here (nor copied by the walk)
    _raise_priority()
    source: ControlledMixer | stretch.Stretched = ControlledMixer(Mixer(audio, list(stems)), control)
    if stretch.available():  # (imported before the sound starts: ~60 ms)
        source = stretch.Stretched(source)
    try:
        output = AudioOutput(source, device=device, latency=latency)
    except AudioDeviceError as error:
        connection.send(str(error))
        return
    connection.send(("playing", output.describe()))
    try:
        while not connection.poll(1.0):  # a message, or the parent's end closed
            pass
    finally:
        output.close()
        # into the player's log (the command line sends file descriptor 2 there)
        print(f"tuiplayer sound: {output.report()}", file=sys.stderr, flush=True)


class AudioProcess:
    """Plays `audio` remixed from `stems` (one StemBuffers per model, in shared memory) in a
    child process, as the shared `control` array says. Raises AudioDeviceError (one line)
    when the output cannot be opened."""

    def __init__(self, audio: np.ndarray, stems: list[StemBuffers], control: np.ndarray,
                 device: int | str | None = None, latency: float = LATENCY_S) -> None:
        self._control = control
        self._moved = (-1.0, time.monotonic())  # the playhead last seen, and since when
        self._process, self._connection = fork_child(_serve, (audio, stems, control, device, latency),
                                                    "tuiplayer-audio")
        problem: str | None = "the sound process did not start"
        self.description = ""
        """The output and its latency, as the child opened it (e.g. "pulse, 50 ms")."""
        try:
            if self._connection.poll(START_TIMEOUT_S):
                answer = self._connection.recv()
                if isinstance(answer, tuple):
                    problem, self.description = None, str(answer[1])
                else:
                    problem = str(answer)
        except (EOFError, OSError):
            pass
        if problem is not None:
            self.close()
            raise AudioDeviceError(problem)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def stalled(self) -> bool:
        """Whether the sound has stopped against the user's will: the child is gone, or the
        playhead has not moved for STALL_S while playing. Call it regularly (the screen does)."""
        if not self._process.is_alive():
            return True
        control, now = self._control, time.monotonic()
        position = control[POSITION]
        if position != self._moved[0] or not control[PLAYING] or control[ENDED]:
            self._moved = (position, now)
            return False
        return now - self._moved[1] > STALL_S

    def close(self) -> None:
        """Stop the sound and the child."""
        with contextlib.suppress(OSError, ValueError):  # the child is gone already
            self._connection.send("stop")
        self._process.join(2.0)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(1.0)
        self._connection.close()
