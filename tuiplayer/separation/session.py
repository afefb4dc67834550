"""A song open for playing: its audio and, per loaded model, its stems as they are separated.

`SongSession` is what the player holds: one `SongSeparation` per model (two for A/B), each
filled from the stem cache at once when the song was separated before, else by its own
`SeparationWorker`. Every model's stems are aligned sample for sample with the song, so
switching models keeps the playhead and re-separates nothing. When a worker finishes, its
stems are stored in the cache; a cache that cannot be written is a notice, not a failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tuiplayer.dsp.stft import Stft
from tuiplayer.separation.cache import StemCache, content_hash
from tuiplayer.separation.engine import Event, Finished, SeparationWorker
from tuiplayer.separation.separator import Predict, SongSeparation, StemBuffers


@dataclass(frozen=True)
class FromCache:
    """A model's stems came from the cache: the whole song is separated already."""

    model: str


@dataclass(frozen=True)
class Notice:
    """Something the user should know that stops nothing (e.g. the cache is not writable)."""

    model: str
    message: str


SessionEvent = Event | FromCache | Notice

PLAYING_BATCH = 1
"""Blocks per model call while a song plays. A seek waits for the call in flight, so small
calls answer a seek soonest; for these models batch 8 saves little (bench: song RTF)."""


class SongSession:
    """The song's audio (n_samples, 2) float32 and its separations, one per model name."""

    def __init__(
        self,
        audio: np.ndarray,
        on_event: Callable[[SessionEvent], None],
        *,
        cache: StemCache | None = None,
        stft: Stft | None = None,
        batch_size: int = PLAYING_BATCH,
        playhead: Callable[[], int] | None = None,
    ) -> None:
        """playhead: where playback is (samples), for a session that plays the song."""
        self.audio = np.ascontiguousarray(audio, dtype=np.float32)
        self._playhead = playhead
        self.content = content_hash(self.audio)
        self.separations: dict[str, SongSeparation] = {}
        self._workers: dict[str, SeparationWorker] = {}
        self._model_sha: dict[str, str] = {}
        self._on_event = on_event
        self._cache = cache
        self._stft = stft or Stft()
        self._batch_size = batch_size
        self._lock = threading.Lock()

    def add_model(self, name: str, sha256: str, load: Callable[[], Predict], playhead: int | None = None,
                  buffers: StemBuffers | None = None) -> None:
        """Make `name`'s stems available: from the cache, or separated in the background from
        `playhead` (default: where the session's playback is, or the start); into `buffers`
        when given (see SongSeparation)."""
        separation = SongSeparation(self.audio, self._stft, 4, buffers=buffers)
        with self._lock:
            self.separations[name] = separation
            self._model_sha[name] = sha256
        cached = self._cache.load(self.audio, self.content, sha256) if self._cache else None
        if cached is not None:
            separation.fill(cached)
            self._on_event(FromCache(name))
            return
        worker = SeparationWorker(name, load, separation, self._forward, self._batch_size, self._playhead)
        if playhead is None:
            playhead = self._playhead() if self._playhead is not None else 0
        worker.seek(playhead)
        with self._lock:
            self._workers[name] = worker
        worker.start()

    def seek(self, sample: int) -> None:
        """Every model's worker serves the new playhead next."""
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.seek(sample)

    def wait(self, timeout: float | None = None) -> None:
        """Block until every worker has ended (finished, failed or stopped)."""
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.join(timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop all workers (each ends after its model call in progress)."""
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.stop()
        self.wait(timeout)

    def _forward(self, event: Event) -> None:
        """A worker's event, on the worker's thread: cache finished stems, then pass it on."""
        if isinstance(event, Finished) and self._cache is not None:
            problem = self._cache.store(self.separations[event.model].stored, self.content,
                                        self._model_sha[event.model])
            if problem:
                self._on_event(Notice(event.model, problem))
        self._on_event(event)
