"""The transport's shared control array, and the mixer it controls (DESIGN.md §3).

One small shared float64 array joins the screen, the sound and the separation: the screen
writes the mix settings (a `MixSnapshot`, under a sequence counter: odd while it writes) and
seeks, each tagged with the song it is meant for; whoever plays the sound writes the song it
plays, the playhead in it and whether it ended; the separation reads the song, the playhead and
the active model. `ControlledMixer` is the one reader/writer on the sound's side: it plays the
session's songs one after another (gapless) by what the array says. `SilentClock` runs one in
real time with no sound card (--no-audio, or while the output is lost).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from tuiplayer.config import SIGNAL
from tuiplayer.playback.mixer import Mixer, MixSnapshot
from tuiplayer.playback.output import BLOCK_FRAMES
from tuiplayer.playback.stretch import TEMPO_MAX
from tuiplayer.stems import shared_zeros

# slots of the control array: the snapshot (under SEQUENCE, for the song SNAPSHOT_SONG); a seek
# (the SEEK_COUNT-th, to SEEK_TARGET in SEEK_SONG); what plays (SONG, POSITION in it, ENDED);
# whether the sound process's output is heard (HEARD: 1, or 0 while it is lost and tried again)
(SEQUENCE, MODEL, PLAYING, LOOP_START, LOOP_STOP, SEEK_COUNT, SEEK_TARGET, POSITION, ENDED, TEMPO, SEMITONES,
 SNAPSHOT_SONG, SEEK_SONG, SONG) = range(14)
GAINS = slice(14, 18)
HEARD = 18
CONTROL_SLOTS = 19

NO_SONG = -1
"""SONG before the first song is played."""


def new_control() -> np.ndarray:
    """The shared control array, with the default snapshot in it and no song playing."""
    control = shared_zeros((CONTROL_SLOTS,), np.float64)
    control[SONG] = control[SNAPSHOT_SONG] = control[SEEK_SONG] = NO_SONG
    control[HEARD] = 1
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
            snapshot = read_snapshot(control)
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


def read_snapshot(control: np.ndarray) -> MixSnapshot:
    loop = None if control[LOOP_START] < 0 else (int(control[LOOP_START]), int(control[LOOP_STOP]))
    return MixSnapshot(gains=tuple(control[GAINS].tolist()), model=int(control[MODEL]),
                       playing=bool(control[PLAYING]), loop=loop, tempo=float(control[TEMPO]),
                       semitones=int(control[SEMITONES]))


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
