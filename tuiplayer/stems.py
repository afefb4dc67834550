"""The stems of one song for one model: the contract the three processes share (DESIGN.md §1).

The separation process writes them, the sound process mixes them, the screen reads their
levels and readiness; nothing else passes between those processes but the transport's control
array (playback.transport) and the separation's events. One `StemBuffers` per model:

    stored        (n_samples, channels, STORED_STEMS) float16   vocals, drums, bass
    frames_ready  (n_frames,) bool                               STFT frames that are final

**other = mix − (vocals + drums + bass)**: the fourth stem is never stored, so the four always
sum to the song exactly (the unity remix, DESIGN.md §3), at 3/8 of the memory of four float32
stems (a 10-minute song: 318 MB instead of 847 MB). `complete` and `stem` apply that rule; the
mixer applies it in its formula (playback.mixer); the cache keeps only what `stored` holds.

Audio is final where every STFT frame overlapping it is (`ready`): the separation only ever
writes samples that are not ready yet, so a reader of ready samples never races the writer
and needs no lock.

A song's audio and its stems for each model travel together as a `SharedSong`: made in the
screen's process, handed to the sound and separation processes while they run (`send_song`,
`receive_song`: the memory's file descriptors go over their pipe), so that those processes
live for the whole session while songs come and go. Its memory is freed when the last
process lets go of it: only the songs a process holds cost memory.
"""

from __future__ import annotations

import mmap
import os
import socket
import tempfile
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.dsp.stft import n_frames_for

STORED_STEMS = len(STEMS) - 1
"""Stems kept (vocals, drums, bass); "other" is the mixture minus these."""


def shared_zeros(shape: tuple[int, ...], dtype: type | np.dtype) -> np.ndarray:
    """A zeroed array in anonymous shared memory: a child forked later sees this process's
    writes to it, and this process the child's. Untouched pages cost no memory."""
    count = int(np.prod(shape))
    buffer = mmap.mmap(-1, max(1, count * np.dtype(dtype).itemsize))  # MAP_SHARED | MAP_ANONYMOUS
    return np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape)


def _memory_file(size: int) -> int:
    """A file descriptor of `size` zeroed bytes that live in memory only (a memfd; elsewhere an
    unlinked temporary file), closed in children that exec (ffmpeg must not hold songs)."""
    if hasattr(os, "memfd_create"):
        descriptor = os.memfd_create("tuiplayer-song", os.MFD_CLOEXEC)
    else:  # (macOS)
        with tempfile.TemporaryFile() as file:
            descriptor = os.dup(file.fileno())
    os.ftruncate(descriptor, max(1, size))
    return descriptor


def _map(descriptor: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    count = int(np.prod(shape))
    buffer = mmap.mmap(descriptor, max(1, count * dtype.itemsize))  # MAP_SHARED (mmap keeps its own descriptor)
    return np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape)


def frame_span(start: int, stop: int, n_frames: int, n_fft: int = SIGNAL.n_fft,
               hop: int = SIGNAL.hop_length) -> tuple[int, int]:
    """Frames [lo, hi) whose windows overlap samples [start, stop)."""
    half = n_fft // 2
    return max(0, (start - half) // hop + 1), min(n_frames, (stop - 1 + half) // hop + 1)


@dataclass(frozen=True)
class StemBuffers:
    """One model's stems of one song (see the module docstring for the shapes)."""

    stored: np.ndarray
    frames_ready: np.ndarray

    @staticmethod
    def zeros(n_samples: int, channels: int = SIGNAL.channels) -> StemBuffers:
        """Empty buffers for a song of n_samples, in this process (SharedSong makes shared ones)."""
        return StemBuffers(np.zeros((n_samples, channels, STORED_STEMS), np.float16),
                           np.zeros((n_frames_for(n_samples),), np.bool_))

    @property
    def n_samples(self) -> int:
        return len(self.stored)

    def ready(self, start: int, stop: int) -> bool:
        """Whether the stems of samples [start, stop) are final."""
        lo, hi = frame_span(max(start, 0), min(stop, self.n_samples), len(self.frames_ready))
        return bool(self.frames_ready[lo:hi].all())

    @property
    def complete(self) -> bool:
        """Whether the whole song is separated."""
        return bool(self.frames_ready.all())

    def ready_until(self, sample: int) -> int:
        """The first sample at or after `sample` whose stems are not final (n_samples when
        all are): stems play without a break from `sample` up to there."""
        frames = self.frames_ready
        first = min(max(sample, 0) // SIGNAL.hop_length, len(frames))
        missing = np.flatnonzero(~frames[first:])
        if not len(missing):
            return self.n_samples
        # the first frame not ready spoils every sample its window touches
        return max(sample, (first + int(missing[0])) * SIGNAL.hop_length - SIGNAL.n_fft // 2)

    def fill(self, stored: np.ndarray) -> None:
        """Take finished stems (n_samples, channels, ≥ STORED_STEMS): all ready."""
        self.stored[...] = stored[..., :STORED_STEMS]
        self.frames_ready[...] = True


def complete(audio: np.ndarray, stored: np.ndarray) -> np.ndarray:
    """audio (n, channels) and stored (n, channels, STORED_STEMS) → all stems (n, channels,
    n_stems) float32, other being the mixture minus the rest."""
    stems = np.empty((*audio.shape, stored.shape[-1] + 1), dtype=np.float32)
    stems[..., :-1] = stored
    other = stems[..., -1]
    # one stem at a time: a sum over the short stem axis is numpy's slow case (0.42 s → 0.19 s
    # for a 4-minute song)
    np.subtract(audio, stems[..., 0], out=other)
    for j in range(1, stored.shape[-1]):
        other -= stems[..., j]
    return stems


def stem(audio: np.ndarray, stored: np.ndarray, index: int) -> np.ndarray:
    """One stem (n, channels) float32 of audio (n, channels) and its stored stems (n,
    channels, STORED_STEMS): a stored one, or other = the mixture minus the rest."""
    if index < stored.shape[-1]:
        return stored[..., index].astype(np.float32)
    return audio - stored.astype(np.float32).sum(axis=-1)


class SharedSong:
    """One song as the session's processes share it: `audio` (n_samples, channels) float32 and
    one `StemBuffers` per model, each array in memory of its own that can be handed to a
    running process (send_song). song: the session's number for it."""

    def __init__(self, song: int, arrays: list[np.ndarray], descriptors: list[int]) -> None:
        self.song = song
        self.audio = arrays[0]
        self.stems = [StemBuffers(stored, ready) for stored, ready in zip(arrays[1::2], arrays[2::2], strict=True)]
        self._arrays = arrays
        self._descriptors = descriptors

    @staticmethod
    def create(song: int, samples: np.ndarray, n_models: int) -> SharedSong:
        """The song's samples (n_samples, channels) copied into shared memory, and empty stems for
        n_models models."""
        n, channels = samples.shape
        layout = [((n, channels), np.dtype(np.float32))]
        stems = [((n, channels, STORED_STEMS), np.dtype(np.float16)), ((n_frames_for(n),), np.dtype(np.bool_))]
        layout += stems * n_models
        descriptors = [_memory_file(int(np.prod(shape)) * dtype.itemsize) for shape, dtype in layout]
        arrays = [_map(d, shape, dtype) for d, (shape, dtype) in zip(descriptors, layout, strict=True)]
        arrays[0][...] = samples
        return SharedSong(song, arrays, descriptors)

    def layout(self) -> list[tuple[tuple[int, ...], str]]:
        return [(a.shape, a.dtype.str) for a in self._arrays]

    def close(self) -> None:
        """Let go of the descriptors (the memory lives on while any process maps it)."""
        for descriptor in self._descriptors:
            os.close(descriptor)
        self._descriptors = []


def send_song(connection: Connection, message: Any, song: SharedSong | None = None) -> None:
    """Send `message` down a pipe made by multiprocessing (a Unix socket pair), with `song`'s
    memory when given: receive_song takes both in the same order."""
    connection.send((message, None if song is None else (song.song, song.layout())))
    if song is not None:
        with socket.socket(fileno=os.dup(connection.fileno())) as channel:
            socket.send_fds(channel, [b"s"], song._descriptors)


def receive_song(connection: Connection) -> tuple[Any, SharedSong | None]:
    """The next message sent by send_song, and its song mapped into this process (or None).
    EOFError when the other end is closed."""
    message, header = connection.recv()
    if header is None:
        return message, None
    number, layout = header
    with socket.socket(fileno=os.dup(connection.fileno())) as channel:
        _, descriptors, _, _ = socket.recv_fds(channel, 1, len(layout))
    if len(descriptors) != len(layout):
        raise EOFError("a song's memory was lost on the way")
    try:
        arrays = [_map(d, tuple(shape), np.dtype(dtype)) for d, (shape, dtype) in zip(descriptors, layout, strict=True)]
    finally:
        for descriptor in descriptors:
            os.close(descriptor)
    return message, SharedSong(number, arrays, [])
