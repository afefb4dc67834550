"""The session's transport: which song plays, its playhead and mix settings, and where the sound goes.

One shared control array (playback.process) holds the mix the user set (a `MixSnapshot`),
seeks, the song playing, its playhead and whether it has ended: the screen writes the mix and
seeks, the sound writes the song and the playhead, the separation process reads the song, the
playhead and the active model.

Songs (`tuiplayer.stems.SharedSong`) are handed to the sound as they come: `play` one now, or
`queue` one to follow the playing one without a gap; `current` is the song the screen shows,
and follows the sound into the queued one (`moved_on`).

The sound comes from a sound process (`AudioProcess`, PortAudio in a child), which keeps its
output going by itself: when the output is lost (a forwarded sound server's link down, a
device unplugged) it plays on silently and reconnects (control HEARD says which). With
--no-audio, with no device at launch, or once that process is gone, the sound comes from a
`SilentClock` in this process, which runs the same mixers over the same control array in real
time and drops the sound: the playhead goes on from where it was. `Transport` owns that
choice and that fallback, and says what changed (`check`); the player only reads and writes
the transport.
"""

from __future__ import annotations

import threading

from tuiplayer.errors import TuiplayerError
from tuiplayer.playback.control import (
    ENDED,
    NO_SONG,
    POSITION,
    SEEK_COUNT,
    SEEK_SONG,
    SEEK_TARGET,
    SONG,
    ControlledMixer,
    SilentClock,
    new_control,
    write_snapshot,
)
from tuiplayer.playback.mixer import Mixer, MixSnapshot
from tuiplayer.playback.process import RECONNECT_S, AudioProcess
from tuiplayer.stems import SharedSong

LOST = f"playing silently, trying to reconnect every {RECONNECT_S:.0f} s"
"""What the window says while the sound process's output is lost."""


class Transport:
    """The session's sound: `start` opens it; `play`, `queue`, `forget` hand it songs; set
    `snapshot`, `seek`; read `current`, `position`, `ended`."""

    def __init__(self) -> None:
        self.control = new_control()
        self.output: AudioProcess | SilentClock | None = None
        self.error: str | None = None
        """Why the sound could not be opened (None when it plays, or was not asked for)."""
        self.note = ""
        """What the window says about the sound when it is not heard ("" while it is)."""
        self.current = NO_SONG
        """The song the screen shows: the one last played, or the queued one once the sound
        reached it (moved_on)."""
        self._snapshot = MixSnapshot()
        self._start = 0  # where the current song was asked to start (until the sound reports it)
        self._songs: dict[int, tuple[SharedSong, MixSnapshot]] = {}  # what the output holds
        self._queued: int | None = None
        self._mixers: dict[int, Mixer] = {}  # the silent clock's
        self._heard = True  # the sound process's output, as last seen by check()

    def start(self, device: int | str | None = None, sound: bool = True, latency: float | None = None) -> None:
        """Open the sound: a sound process (it forks: call this before threads start and before
        songs are decoded, which the child would otherwise hold on to), else the silent clock,
        with `error` and `note` saying why."""
        if sound:
            try:
                self.output = AudioProcess(self.control, device, latency)
                if self.output.waiting:  # (it tries again by itself)
                    self._heard = False
                    self.note = f"{self.output.waiting} — {LOST}"
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
            return self.output.description if self._heard else LOST
        return "no sound (silent clock)"

    # ---- songs -------------------------------------------------------------------------------
    def play(self, song: SharedSong, snapshot: MixSnapshot, sample: int = 0) -> None:
        """Play `song` now, from `sample`, with `snapshot` (it becomes `current` at once)."""
        self._songs[song.song] = (song, snapshot)
        if self._queued == song.song:
            self._queued = None
        self.current, self._start, self._snapshot = song.song, sample, snapshot
        write_snapshot(self.control, snapshot, song.song)
        self.control[POSITION], self.control[ENDED] = sample, 0
        if isinstance(self.output, AudioProcess):
            self.output.play(song, snapshot, sample)
        elif isinstance(self.output, SilentClock):
            self.output.source.play(song.song, self._mixer(song), snapshot, sample)

    def queue(self, song: SharedSong, snapshot: MixSnapshot) -> None:
        """Play `song` from its start right after the current song's last sample (gapless)."""
        self._songs[song.song] = (song, snapshot)
        self._queued = song.song
        if isinstance(self.output, AudioProcess):
            self.output.queue(song, snapshot)
        elif isinstance(self.output, SilentClock):
            self.output.source.queue(song.song, self._mixer(song), snapshot)

    @property
    def queued(self) -> int | None:
        """The song queued to follow the current one (None: the session ends with it)."""
        return self._queued

    def forget(self, song: int) -> None:
        """Let go of a song that is not current (taken back if queued)."""
        if song == self.current:
            raise ValueError("the current song cannot be forgotten")
        self._songs.pop(song, None)
        if self._queued == song:
            self._queued = None
        if isinstance(self.output, AudioProcess):
            self.output.forget(song)
        elif isinstance(self.output, SilentClock):
            self.output.source.unqueue(song)
        self._mixers.pop(song, None)  # (here no callback needs the last reference kept)

    def moved_on(self) -> bool:
        """Call on a timer: whether the sound went on into the queued song since the last call
        (then it is `current`, with the snapshot it was queued with)."""
        if self._queued is None or int(self.control[SONG]) != self._queued:
            return False
        self.current, self._start = self._queued, 0
        self._snapshot = self._songs[self.current][1]
        self._queued = None
        return True

    def _mixer(self, song: SharedSong) -> Mixer:
        if song.song not in self._mixers:
            self._mixers[song.song] = Mixer(song.audio, list(song.stems))
        return self._mixers[song.song]

    def _silent(self) -> None:
        """The silent clock, taking over the current song where it is and the queued one."""
        source = ControlledMixer(self.control)
        playing_now = int(self.control[SONG]) == self.current
        self._mixers = {}
        if self.current in self._songs:
            song, _ = self._songs[self.current]
            source.play(song.song, self._mixer(song), self._snapshot,
                        int(self.control[POSITION]) if playing_now else self._start)
        if self._queued is not None:
            song, snapshot = self._songs[self._queued]
            source.queue(song.song, self._mixer(song), snapshot)
        self.output = SilentClock(source)

    def check(self) -> str | None:
        """Call on a timer: the notice to show (once) when the sound process's output was lost
        (a link down, a device unplugged: the process plays on silently and reconnects by
        itself) or is back, or when the process itself is gone (then the silent clock here
        carries on from the same playhead); None while nothing changed."""
        output = self.output
        if not isinstance(output, AudioProcess):
            return None
        if output.stalled():
            threading.Thread(target=output.close, daemon=True).start()  # (it may take a while)
            self._silent()
            self.note = "the sound stopped (its process ended) — playing silently"
            return self.note
        heard = output.heard
        if heard == self._heard:
            return None
        self._heard = heard
        self.note = "" if self._heard else f"the sound output was lost — {LOST}"
        return f"the sound is back: {output.description}" if self._heard else self.note

    @property
    def pid(self) -> int | None:
        """The sound process's id (None when the sound is not a process)."""
        return self.output.pid if isinstance(self.output, AudioProcess) else None

    # ---- the current song -----------------------------------------------------------------------
    @property
    def snapshot(self) -> MixSnapshot:
        return self._snapshot

    @snapshot.setter
    def snapshot(self, snapshot: MixSnapshot) -> None:
        """The current song's mix settings."""
        write_snapshot(self.control, snapshot, self.current)
        self._snapshot = snapshot
        if self.current in self._songs:
            self._songs[self.current] = (self._songs[self.current][0], snapshot)

    def seek(self, sample: int) -> None:
        """Move the current song's playhead to `sample` (the sound takes it at its next buffer;
        `position` says it at once)."""
        self.control[SEEK_TARGET] = sample
        self.control[SEEK_SONG] = self.current
        self.control[SEEK_COUNT] += 1
        self.control[POSITION] = sample
        self._start = sample

    @property
    def position(self) -> int:
        """The current song's playhead in samples: the first sample of the next buffer."""
        if int(self.control[SONG]) != self.current:  # (the sound has not taken it yet)
            return self._start
        return int(self.control[POSITION])

    @property
    def ended(self) -> bool:
        """Whether the current song played to its end (and nothing followed it)."""
        return int(self.control[SONG]) == self.current and bool(self.control[ENDED])

    def close(self) -> None:
        if self.output is not None:
            self.output.close()
            self.output = None
