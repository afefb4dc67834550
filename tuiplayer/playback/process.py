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
from tuiplayer.stems import SharedSong, receive_song, send_song, shared_zeros

# slots of the control array: the snapshot (under SEQUENCE, for the song SNAPSHOT_SONG); a seek
# (the SEEK_COUNT-th, to SEEK_TARGET in SEEK_SONG); what plays (SONG, POSITION in it, ENDED)
(SEQUENCE, MODEL, PLAYING, LOOP_START, LOOP_STOP, SEEK_COUNT, SEEK_TARGET, POSITION, ENDED, TEMPO, SEMITONES,
 SNAPSHOT_SONG, SEEK_SONG, SONG) = range(14)
GAINS = slice(14, 18)
CONTROL_SLOTS = 18

NO_SONG = -1
"""SONG before the first song is played."""

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


def new_control() -> np.ndarray:
    """The shared control array, with the default snapshot in it and no song playing."""
    control = shared_zeros((CONTROL_SLOTS,), np.float64)
    control[SONG] = control[SNAPSHOT_SONG] = control[SEEK_SONG] = NO_SONG
    write_snapshot(control, MixSnapshot(), NO_SONG)
    return control


class ControlledMixer:
    """The child's source: plays its songs one after another (each with its own `Mixer`),
    applies the parent's snapshot and seeks for the song playing, reports the playhead.

    `play` and `queue` are called from another thread than the one that renders: each hands
    over one object in one assignment, taken at the start of the next buffer (play) or at the
    playing song's last sample (queue). The renderer never drops the last reference to a mixer
    (whoever calls play/queue keeps them), so no song's memory is freed in the audio callback.
    """

    def __init__(self, control: np.ndarray, mixer: Mixer | None = None, song: int = NO_SONG) -> None:
        """control: the CONTROL_SLOTS shared array (see write_snapshot); mixer, song: what plays
        from the start (else silence until `play`)."""
        self.control = control
        self.mixer = mixer
        self.song = song
        self._sequence = -1.0
        self._seeks = control[SEEK_COUNT]
        # play now: (serial, song, mixer, snapshot, sample)
        self._asked: tuple[int, int, Mixer, MixSnapshot, int] | None = None
        self._taken = 0  # the serial of the last one taken
        self._queued: tuple[int, Mixer, MixSnapshot] | None = None  # (song, mixer, snapshot) to follow
        self._snapshot = MixSnapshot()

    @property
    def snapshot(self) -> MixSnapshot:
        """The settings the playing song is played by (as of the last take_control)."""
        return self.mixer.snapshot if self.mixer is not None else self._snapshot

    def play(self, song: int, mixer: Mixer, snapshot: MixSnapshot, sample: int = 0) -> None:
        """Play `mixer` (the session's song number `song`) from `sample` at the next buffer."""
        self._asked = (self._asked[0] + 1 if self._asked else 1, song, mixer, snapshot, sample)

    def queue(self, song: int, mixer: Mixer, snapshot: MixSnapshot) -> None:
        """Play `mixer` from its start right after the playing song's last sample."""
        self._queued = (song, mixer, snapshot)

    def unqueue(self, song: int) -> None:
        """Take back `song` if it is the one queued."""
        queued = self._queued
        if queued is not None and queued[0] == song:
            self._queued = None

    @property
    def held(self) -> set[int]:
        """The songs this source may still play (playing, asked for, queued)."""
        asked, queued = self._asked, self._queued
        return {self.song, *([asked[1]] if asked else []), *([queued[0]] if queued else [])}

    def take_control(self) -> bool:
        """Take a song asked for, the parent's latest snapshot and seek for the playing song;
        True when the sound jumps (a seek or another song)."""
        control = self.control
        jumped = False
        asked = self._asked
        if asked is not None and asked[0] != self._taken:
            self._taken, song, mixer, snapshot, sample = asked
            self._start(song, mixer, snapshot)
            mixer.seek_to = sample
            jumped = True
        sequence = control[SEQUENCE]
        if sequence != self._sequence and sequence % 2 == 0 and self.mixer is not None:
            snapshot = _read_snapshot(control)
            song = control[SNAPSHOT_SONG]
            if control[SEQUENCE] == sequence:  # not torn by a write in between
                self._sequence = sequence
                if song == self.song:
                    self.mixer.snapshot = snapshot
        if control[SEEK_COUNT] == self._seeks:
            return jumped
        self._seeks = control[SEEK_COUNT]
        if control[SEEK_SONG] != self.song or self.mixer is None:
            return jumped
        self.mixer.seek_to = int(control[SEEK_TARGET])
        return True

    def render(self, out: np.ndarray) -> None:
        """The next len(out) frames of the remix into out (frames, 2), going on into the queued
        song where the playing one ends; the song and the playhead reported."""
        mixer = self.mixer
        if mixer is None:
            out[:] = 0.0
            return
        played = mixer.play(out)
        queued = self._queued
        if mixer.ended and queued is not None and mixer.snapshot.playing:
            self._queued = None
            song, mixer, snapshot = queued
            self._start(song, mixer, snapshot)
            mixer.play(out[played:])
        control = self.control
        control[POSITION] = mixer.position
        control[ENDED] = mixer.ended
        control[SONG] = self.song

    def fill(self, out: np.ndarray) -> bool:
        """As an output's source at the song's own tempo."""
        self.take_control()
        self.render(out)
        return True

    def _start(self, song: int, mixer: Mixer, snapshot: MixSnapshot) -> None:
        mixer.snapshot = snapshot
        mixer.settle()
        mixer.seek_to = 0
        self.mixer, self.song = mixer, song
        queued = self._queued
        if queued is not None and queued[0] == song:
            self._queued = None


def write_snapshot(control: np.ndarray, snapshot: MixSnapshot, song: int) -> None:
    """Publish the snapshot for `song` in control (one writer): the sequence is odd while the
    fields change."""
    control[SEQUENCE] += 1
    control[GAINS] = snapshot.gains
    control[MODEL] = snapshot.model
    control[PLAYING] = snapshot.playing
    control[LOOP_START], control[LOOP_STOP] = snapshot.loop if snapshot.loop else (-1, -1)
    control[TEMPO], control[SEMITONES] = snapshot.tempo, snapshot.semitones
    control[SNAPSHOT_SONG] = song
    control[SEQUENCE] += 1


def _read_snapshot(control: np.ndarray) -> MixSnapshot:
    loop = None if control[LOOP_START] < 0 else (int(control[LOOP_START]), int(control[LOOP_STOP]))
    return MixSnapshot(gains=tuple(control[GAINS].tolist()), model=int(control[MODEL]),
                       playing=bool(control[PLAYING]), loop=loop, tempo=float(control[TEMPO]),
                       semitones=int(control[SEMITONES]))


def _serve(connection: Connection, parent_end: Connection, control: np.ndarray, device: int | str | None,
           latency: float) -> None:
    """The child: open the output, then play the songs it is given until told to stop or the
    parent is gone."""
    parent_end.close()  # (inherited by the fork: open here, the parent's death would never read as EOF)
    name_process("tuiplayer-sound")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the sound ends
    gc.freeze()  # the parent's objects: never walked here (nor copied by the walk)
    _raise_priority()
    mixers = ControlledMixer(control)
    source: ControlledMixer | stretch.Stretched = mixers
    if stretch.available():  # (imported before the sound starts: ~60 ms)
        source = stretch.Stretched(mixers)
    try:
        output = AudioOutput(source, device=device, latency=latency)
    except AudioDeviceError as error:
        connection.send(str(error))
        return
    connection.send(("playing", output.describe()))
    songs: dict[int, Mixer] = {}  # every song the source may play: their last references live here
    forgotten: set[int] = set()  # let go of by the parent: dropped here once the source cannot play them
    try:
        while True:
            for number in forgotten - mixers.held:
                songs.pop(number, None)
                forgotten.discard(number)
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
        output.close()
        # into the player's log (the command line sends file descriptor 2 there)
        print(f"tuiplayer sound: {output.report()}", file=sys.stderr, flush=True)


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

    def __init__(self, control: np.ndarray, device: int | str | None = None, latency: float = LATENCY_S) -> None:
        self._control = control
        self._moved = (-1.0, time.monotonic())  # the playhead last seen, and since when
        super().__init__(_serve, (control, device, latency), "tuiplayer-audio")
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

    def play(self, song: SharedSong, snapshot: MixSnapshot, sample: int = 0) -> None:
        """Play `song` now (at its next buffer) from `sample`, with `snapshot`."""
        self.send(("play", song.song, snapshot, sample), song)

    def queue(self, song: SharedSong, snapshot: MixSnapshot) -> None:
        """Play `song` from its start right after the playing song's last sample (gapless)."""
        self.send(("queue", song.song, snapshot), song)

    def forget(self, song: int) -> None:
        """Let go of song number `song` (taken back if queued; never the one playing)."""
        self.send(("forget", song))

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
