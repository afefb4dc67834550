"""The audio callback in a process of its own (DESIGN.md §3, §4).

In the player's process the callback shares the GIL with Textual, which draws the screen in
Python. Measured with the end-to-end test (PulseAudio null sink, 50 ms of output latency): a
thread that sleeps 1 ms woke 40-90 ms late every second or two while the screen was drawn,
with no garbage collection running, and each time the sound had a gap. So the sound comes from
a forked child process whose only busy thread is PortAudio's callback. It lives for the whole
session (forked at launch, before any song is decoded or any thread starts) and plays its songs
one after another without a gap:

- each song comes as a `tuiplayer.stems.SharedSong` (its audio and each model's stems, in
  shared memory) down the child's pipe: `play` it now, or `queue` it to follow the playing one
  at its last sample (gapless, in the middle of a buffer); `forget` lets go of it. The
  separation process writes the stems, the child's `Mixer` reads them (a block only writes
  samples that are not ready yet, so no locks are needed);
- the mix settings (a `MixSnapshot`), seeks and the playhead go through the transport's small
  shared float64 control array, each tagged with the song it is meant for: the screen writes
  the snapshot under a sequence counter (odd while it writes), the child takes it at the start
  of a buffer when the counter is even and unchanged across its read; the child writes the
  song it plays and the playhead in it; the separation process reads those and the active model;
- tempo and pitch are the last step, after the mixer (`playback.stretch`), here too;
- the output is kept going (`Speaker`): when it is lost (no callback for output.LOST_S, or
  PortAudio gave up on the stream: a forwarded sound server's link down, a device unplugged),
  a silent clock moves the playhead on and the output is opened again every RECONNECT_S; the
  sound comes back where the song has got to.

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
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from tuiplayer.playback import stretch
from tuiplayer.playback.control import ENDED, HEARD, PLAYING, POSITION, ControlledMixer, SilentClock
from tuiplayer.playback.mixer import Mixer, MixSnapshot
from tuiplayer.playback.output import AudioDeviceError, AudioOutput, OutputStats, pulse_server, refresh_outputs
from tuiplayer.stems import SharedSong, receive_song, send_song

START_TIMEOUT_S = 10.0
"""How long the parent waits for the child to open the sound output."""

STALL_S = 5.0
"""Playing, with the playhead still for this long: the sound process is stuck or gone (a lost
output is the child's own business: output.LOST_S, then its silent clock moves the playhead)."""

GATE_CLOSE_S = 0.05
"""Longer than any callback takes (the slowest measured: 23 ms)."""

RECONNECT_S = 2.0
"""While the output is lost, how often the sound process tries to open it again."""

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


class Child:
    """A forked daemon child running target(child_end, parent_end, *args), and this process's
    end of its pipe (a Unix socket pair: songs go down it, `send`). The child must close
    parent_end, so that our death reads as EOF there, and end on a ("stop",) message."""

    def __init__(self, target: Callable[..., None], args: tuple[Any, ...], name: str) -> None:
        context = multiprocessing.get_context("fork")
        parent_end, child_end = context.Pipe()
        self._process = context.Process(target=target, args=(child_end, parent_end, *args), name=name, daemon=True)
        self._process.start()
        child_end.close()
        self._connection = parent_end

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def send(self, message: tuple[Any, ...], song: SharedSong | None = None) -> None:
        """A message for the child, with a song's memory (stems.send_song); nothing where the
        child is gone (its owner finds that out on its own timer)."""
        with contextlib.suppress(OSError, ValueError):
            send_song(self._connection, message, song)

    def close(self) -> None:
        """Ask the child to end; end it if it has not within 2 s."""
        self.send(("stop",))
        self._process.join(2.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(1.0)
        self._connection.close()


def _serve(connection: Connection, parent_end: Connection, control: np.ndarray, device: int | str | None,
           latency: float | None) -> None:
    """The child: open the output, then play the songs it is given until told to stop or the
    parent is gone."""
    parent_end.close()  # (inherited by the fork: open here, the parent's death would never read as EOF)
    name_process("tuiplayer-sound")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the sound ends
    gc.freeze()  # the parent's objects: never walked here (nor copied by the walk)
    _raise_priority()
    mixers = ControlledMixer(control)
    try:
        speaker = Speaker(mixers, device, latency)
    except AudioDeviceError as error:
        connection.send(str(error))
        return
    connection.send(("waiting", speaker.waiting) if speaker.waiting else ("playing", speaker.describe()))
    songs: dict[int, Mixer] = {}  # every song the source may play: their last references live here
    forgotten: set[int] = set()  # let go of by the parent: dropped here once the source cannot play them
    try:
        while True:
            for number in forgotten - mixers.held:
                songs.pop(number, None)
                forgotten.discard(number)
            if speaker.check():
                connection.send(("playing", speaker.describe()))
            if not connection.poll(0.5):
                continue
            try:
                message, song = receive_song(connection)
            except (EOFError, OSError):  # the parent is gone
                break
            if message[0] == "stop":
                break
            _obey(message, song, mixers, songs, forgotten)
    finally:
        speaker.close()
        # into the player's log (the command line sends file descriptor 2 there)
        print(f"tuiplayer sound: {speaker.stats.report()}", file=sys.stderr, flush=True)


class Gate:
    """Silence until `opened`, then `source`'s sound: a new output starts while the silent clock
    still runs the mixers, and takes over from it at one moment."""

    def __init__(self, source: ControlledMixer | stretch.Stretched) -> None:
        self.source = source
        self.opened = False

    def fill(self, out: np.ndarray) -> bool:
        if not self.opened:
            out[:] = 0.0
            return True
        return self.source.fill(out)


class Speaker:
    """The sound process's output, kept going: the sound card while it plays; while it is lost
    (output.LOST_S), the silent clock over the same mixers, so that the playhead goes on, and
    another try to open it every RECONNECT_S; control[HEARD] says which. Tempo and pitch
    (`stretch.Stretched`) come after the mixers, where Rubber Band is installed."""

    def __init__(self, mixers: ControlledMixer, device: int | str | None, latency: float | None) -> None:
        """Raises AudioDeviceError when the output does not open at first, unless it is the
        sound server PULSE_SERVER names (a tunnel may not be up yet): then `waiting` says why,
        and it is tried again like a lost one."""
        self.mixers, self.device, self.latency = mixers, device, latency
        self.source: ControlledMixer | stretch.Stretched = mixers
        if stretch.available():  # (imported before the sound starts: ~60 ms)
            self.source = stretch.Stretched(mixers)
        self.stats = OutputStats()
        self._gate = Gate(self.source)
        self._gate.opened = True
        self.output: AudioOutput | None = None
        self.clock: SilentClock | None = None
        self.waiting: str | None = None
        """Why the output did not open at first (None: it did)."""
        self._retry_at = 0.0
        self._closing: list[threading.Thread] = []  # lost outputs being closed
        try:
            self.output = AudioOutput(self._gate, device, latency=latency, stats=self.stats)
        except AudioDeviceError as error:
            if device is not None or not pulse_server():
                raise
            self.waiting = str(error)
            self._go_silent()
            return
        mixers.control[HEARD] = 1

    def describe(self) -> str:
        return self.output.describe() if self.output is not None else "lost"

    def check(self) -> bool:
        """Call every half second or so: let go of a lost output, or try to open it again when
        due. True when it was opened again."""
        now = time.monotonic()
        if self.output is not None:
            if self.output.lost():
                self._lose(self.output)
            return False
        if now < self._retry_at:
            return False
        if any(closing.is_alive() for closing in self._closing):
            self._retry_at = now + RECONNECT_S  # (PortAudio is not to be restarted under it)
            return False
        self._closing.clear()
        gate = Gate(self.source)
        try:
            refresh_outputs()  # (the sound server may be another one now, or there at last)
            output = AudioOutput(gate, self.device, latency=self.latency, stats=self.stats)
        except AudioDeviceError:
            self._retry_at = time.monotonic() + RECONNECT_S
            return False
        if self.clock is not None:
            self.clock.close()
            self.clock = None
        if isinstance(self.source, stretch.Stretched):
            self.source.restart()
        gate.opened = True
        self.output, self._gate = output, gate
        self.mixers.control[HEARD] = 1
        return True

    def _lose(self, output: AudioOutput) -> None:
        self._gate.opened = False  # (should its callback come back, it no longer touches the mixers)
        # closed on a thread of its own: a stream whose server went away may take long to close
        closing = threading.Thread(target=_close_quietly, args=(output,), daemon=True)
        closing.start()
        self._closing.append(closing)
        time.sleep(GATE_CLOSE_S)  # (a callback that was running as the gate closed has returned)
        self.output = None
        self.stats.lost()
        self._go_silent()

    def _go_silent(self) -> None:
        self.clock = SilentClock(self.mixers)
        self.mixers.control[HEARD] = 0
        self._retry_at = time.monotonic() + RECONNECT_S

    def close(self) -> None:
        if self.clock is not None:
            self.clock.close()
        if self.output is not None:
            _close_quietly(self.output)


def _close_quietly(output: AudioOutput) -> None:
    with contextlib.suppress(Exception):  # (PortAudio's own complaint about a dead stream: nothing to do)
        output.close()


def _obey(message: tuple[Any, ...], song: SharedSong | None, source: ControlledMixer, songs: dict[int, Mixer],
          forgotten: set[int]) -> None:
    """Carry out one of AudioProcess's messages: ("play", number, snapshot, sample), ("queue",
    number, snapshot), ("forget", number)."""
    kind, number = message[0], int(message[1])
    if song is not None:
        songs[number] = Mixer(song.audio, list(song.stems))
        forgotten.discard(number)
    if kind == "play":
        source.play(number, songs[number], message[2], int(message[3]))
    elif kind == "queue":
        source.queue(number, songs[number], message[2])
    elif kind == "forget":
        source.unqueue(number)
        forgotten.add(number)


class AudioProcess(Child):
    """Plays the session's songs in a child process (see the module docstring), as the shared
    `control` array says. Raises AudioDeviceError (one line) when the output cannot be opened."""

    def __init__(self, control: np.ndarray, device: int | str | None = None, latency: float | None = None) -> None:
        self._control = control
        self._moved = (-1.0, time.monotonic())  # the playhead last seen, and since when
        super().__init__(_serve, (control, device, latency), "tuiplayer-audio")
        problem: str | None = "the sound process did not start"
        self.description = ""
        """The output and its latency, as the child opened it (e.g. "pulse, 50 ms")."""
        self.waiting: str | None = None
        """Why the output did not open at first, where the child tries again (PULSE_SERVER)."""
        try:
            if self._connection.poll(START_TIMEOUT_S):
                answer = self._connection.recv()
                if isinstance(answer, tuple) and answer[0] == "waiting":
                    problem, self.waiting = None, str(answer[1])
                elif isinstance(answer, tuple):
                    problem, self.description = None, str(answer[1])
                else:
                    problem = str(answer)
        except (EOFError, OSError):
            pass
        if problem is not None:
            self.close()
            raise AudioDeviceError(problem)

    def play(self, song: SharedSong, snapshot: MixSnapshot, sample: int = 0) -> None:
        """Play `song` now (at its next buffer) from `sample`, with `snapshot`."""
        self.send(("play", song.song, snapshot, sample), song)

    def queue(self, song: SharedSong, snapshot: MixSnapshot) -> None:
        """Play `song` from its start right after the playing song's last sample (gapless)."""
        self.send(("queue", song.song, snapshot), song)

    def forget(self, song: int) -> None:
        """Let go of song number `song` (taken back if queued; never the one playing)."""
        self.send(("forget", song))

    @property
    def heard(self) -> bool:
        """Whether the child's output plays (False while it is lost and tried again); the
        description follows what the child last said it opened."""
        with contextlib.suppress(EOFError, OSError):
            while self._connection.poll(0):
                news = self._connection.recv()
                if isinstance(news, tuple) and news[0] == "playing":
                    self.description = str(news[1])
        return bool(self._control[HEARD])

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
