"""The live remix: the audio callback's side of the player (DESIGN.md §3, §4).

`Mixer.fill(out)` is the output's source. It runs on PortAudio's thread and takes no locks: the
UI replaces `Mixer.snapshot` (a frozen `MixSnapshot`) whole, and the callback reads it once per
buffer. It writes into preallocated scratch arrays only.

Per buffer it plays, from the playhead on:
    out = g_other · mix + Σ_{j < 3} (g_j − g_other) · stem_j
which is Σ_j g_j · stem_j because other = mix − (vocals + drums + bass) (see SongSeparation):
only three stems are read, and at unity gains the output is the mix itself. Where the active
model's stems are not ready yet, the gains are taken as unity, i.e. the original mix plays.
Gains move from the previous buffer's values to the new ones along a linear ramp over the
buffer (no clicks), so a fader acts from the next buffer on (output.BLOCK_FRAMES). A/B switches cross-fade
the two models' stems over one buffer. An A-B loop wraps the playhead inside the buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from tuiplayer.config import STEMS

MAX_FRAMES = 16384
"""The largest buffer a callback may ask for (scratch arrays are this long)."""

N_STEMS = len(STEMS)

CHUNK_FRAMES = 128
"""A buffer is rendered in chunks of at most this many frames, so that the callback holds the
GIL from start to end: numpy lets the GIL go inside any operation on more than 500 elements,
and each time it is let go while the screen's thread runs Python, taking it back costs up to
the interpreter's switch interval (5 ms). The ~22 operations of a 1024-frame buffer then
cost up to ~110 ms: the dropouts the end-to-end test heard. On (128, 2) arrays, none let go."""


class Stems(Protocol):
    """What the mixer reads of a separation (SongSeparation is one)."""

    stored: np.ndarray  # (n_samples, 2, n_stems - 1): every stem but other

    def ready(self, start: int, stop: int) -> bool: ...


def _unity() -> tuple[float, ...]:
    return (1.0,) * N_STEMS


@dataclass(frozen=True)
class MixSnapshot:
    """What the user set, as the callback reads it; replaced whole, never changed.

    gains: linear gain per stem (mute and solo already applied); model: index of the active
    separation in `Mixer.separations`; playing: whether the playhead moves; loop: (start,
    stop) samples of an A-B loop, or None; tempo (1.0 = the song's own) and semitones: what
    the sound after the mixer makes of it (playback.stretch; the mixer itself plays song time).
    """

    gains: tuple[float, ...] = field(default_factory=_unity)
    model: int = 0
    playing: bool = True
    loop: tuple[int, int] | None = None
    tempo: float = 1.0
    semitones: int = 0


class Mixer:
    """Plays `audio` (n_samples, 2) float32, remixed from the stems of `separations` (one per
    model, None while a model has none; the list itself is replaced whole)."""

    def __init__(self, audio: np.ndarray, separations: list[Stems | None] | None = None) -> None:
        self.audio = np.ascontiguousarray(audio, dtype=np.float32)
        self.separations: list[Stems | None] = list(separations or [])
        self.snapshot = MixSnapshot()
        self.position = 0
        """The playhead in samples: the first sample of the next buffer."""
        self.seek_to: int | None = None
        """Set by the UI; the callback moves the playhead there at its next buffer."""
        self.ended = False
        """True once the playhead reached the end of the song (playing stops there)."""
        # the callback's state: gains heard at the end of the last buffer, which model
        self._gains = np.ones(N_STEMS, dtype=np.float32)
        self._model = 0
        # scratch, allocated once (numpy allocates when it broadcasts an (n, 1) operand, so
        # every curve is stored per channel): ramps, gain curves, a stem as float32, its share,
        # the old model's remix during an A/B cross-fade
        self._steps = np.repeat(np.arange(1, MAX_FRAMES + 1, dtype=np.float32)[:, None], 2, axis=1)
        self._ramp = np.empty((MAX_FRAMES, 2), dtype=np.float32)
        self._fade = np.empty((MAX_FRAMES, 2), dtype=np.float32)
        self._curve = np.empty((N_STEMS, MAX_FRAMES, 2), dtype=np.float32)
        self._difference = np.empty((MAX_FRAMES, 2), dtype=np.float32)
        self._stem = np.empty((MAX_FRAMES, 2), dtype=np.float32)
        self._share = np.empty((MAX_FRAMES, 2), dtype=np.float32)
        self._previous = np.empty((MAX_FRAMES, 2), dtype=np.float32)
        self._target = np.ones(N_STEMS, dtype=np.float32)
        self._from = np.ones(N_STEMS, dtype=np.float32)
        self._to = np.ones(N_STEMS, dtype=np.float32)
        self._fading_from: int | None = None

    def fill(self, out: np.ndarray) -> bool:
        """Write the next len(out) frames (frames, 2) float32 into out; always True (the stream
        stays open at the song's end, playing silence)."""
        self.play(out)
        return True

    def play(self, out: np.ndarray) -> int:
        """Write the next len(out) frames (frames, 2) float32 into out: how many came from the
        song (fewer than len(out) where it ended in this buffer: silence after it)."""
        if self.seek_to is not None:
            self.position, self.seek_to = min(max(self.seek_to, 0), len(self.audio)), None
            self.ended = False
        snapshot = self.snapshot
        if not snapshot.playing or self.ended:
            out[:] = 0.0
            return 0
        # this buffer ramps the gains from where the last one ended to the snapshot's, and
        # cross-fades from the last buffer's model to the snapshot's
        self._from[:] = self._gains
        self._to[:] = snapshot.gains
        self._fading_from = self._model if snapshot.model != self._model else None
        self._model = snapshot.model
        done, total = 0, len(out)
        loop = snapshot.loop
        while done < total:
            looping = loop is not None and loop[0] <= self.position < loop[1]
            stop = loop[1] if looping else len(self.audio)  # type: ignore[index]
            count = min(total - done, stop - self.position, CHUNK_FRAMES)
            if count <= 0:  # the end of the song
                out[done:] = 0.0
                self.ended = True
                return done
            self._render(out[done : done + count], done, total)
            self.position += count
            done += count
            if looping and self.position == stop:
                self.position = loop[0]  # type: ignore[index]
        if self.position == len(self.audio):  # (ended exactly here: a next song starts in the next buffer)
            self.ended = True
        return done

    def settle(self) -> None:
        """Play the snapshot's gains from the first frame on, without a ramp (a song that
        starts after another starts at its own mix)."""
        self._gains[:] = self.snapshot.gains
        self._model = self.snapshot.model

    def _render(self, out: np.ndarray, offset: int, total: int) -> None:
        """Frames position … position+len(out) of the remix into out: frames offset … offset +
        len(out) of a buffer of `total` frames (len(out) ≤ CHUNK_FRAMES)."""
        start, count = self.position, len(out)
        stop = start + count
        new, old = self._model, self._fading_from
        new_ready = self._ready(new, start, stop)
        old_ready = old is not None and self._ready(old, start, stop)
        if not (new_ready or old_ready):  # nothing separated here: the original mix
            out[:] = self.audio[start:stop]
            self._gains[:] = 1.0
            return
        # the gains reached at the end of this chunk on the buffer's ramp; unity where only the
        # old model has stems (it fades out playing the mix)
        if new_ready:
            np.subtract(self._to, self._from, out=self._target)
            np.multiply(self._target, np.float32((offset + count) / total), out=self._target)
            np.add(self._target, self._from, out=self._target)
        else:
            self._target[:] = 1.0
        # gain curves from the last chunk's gains to the target: (n_stems, count, 2)
        ramp = self._ramp[:count]
        np.multiply(self._steps[:count], np.float32(1.0 / count), out=ramp)
        curve = self._curve[:, :count]
        for j in range(N_STEMS):
            np.multiply(ramp, self._target[j] - self._gains[j], out=curve[j])
            np.add(curve[j], self._gains[j], out=curve[j])
        self._gains[:] = self._target
        self._remix(out, self.separations[new if new_ready else old], start, curve)  # type: ignore[index,arg-type]
        if new_ready and old_ready:  # an A/B switch: the old model's remix fades out over the buffer
            previous, fade = self._previous[:count], self._fade[:count]
            self._remix(previous, self.separations[old], start, curve)  # type: ignore[index,arg-type]
            np.subtract(previous, out, out=previous)
            np.multiply(self._steps[offset : offset + count], np.float32(-1.0 / total), out=fade)
            np.add(fade, np.float32(1.0), out=fade)
            np.multiply(previous, fade, out=previous)
            np.add(out, previous, out=out)

    def _remix(self, out: np.ndarray, stems: Stems, start: int, curve: np.ndarray) -> None:
        """out = g_other · mix + Σ_{j<3} (g_j − g_other) · stem_j over len(out) frames from start.

        curve: (n_stems, len(out), 2) gain per stem, frame and channel; left unchanged.
        """
        count = len(out)
        np.multiply(self.audio[start : start + count], curve[-1], out=out)
        difference, stem, share = self._difference[:count], self._stem[:count], self._share[:count]
        for j in range(N_STEMS - 1):
            np.subtract(curve[j], curve[-1], out=difference)
            np.copyto(stem, stems.stored[start : start + count, :, j])
            np.multiply(stem, difference, out=share)
            np.add(out, share, out=out)

    def _ready(self, index: int, start: int, stop: int) -> bool:
        if index >= len(self.separations):
            return False
        separation = self.separations[index]
        return separation is not None and separation.ready(start, stop)
