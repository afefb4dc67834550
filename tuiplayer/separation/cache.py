"""Separated stems on disk, per (audio content, model), so a song opened again plays at once.

An entry is `<cache>/stems/<content hash>-<model sha256[:16]>.npy` plus a `.json` beside it
with the array's shape and checksum. Vocals, drums and bass are stored as float16 (half the
size); "other" is rebuilt as mixture − (vocals + drums + bass), so the four stems still sum
exactly to the input (unity remix). Entries are written atomically; one whose checksum,
shape or files do not match is ignored (and rebuilt by the caller). The folder is kept under
a size limit by evicting the least recently used entries.

The cache folder is `$TUIPLAYER_CACHE_DIR`, else `$XDG_CACHE_HOME/tuiplayer`, else
`~/.cache/tuiplayer`; the limit is `$TUIPLAYER_CACHE_MB` (default 4096).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tuiplayer.files import atomic_write, write_text
from tuiplayer.stems import STORED_STEMS, complete

DEFAULT_LIMIT_MB = 4096


def cache_dir() -> Path:
    """The cache folder (see the module docstring)."""
    if os.environ.get("TUIPLAYER_CACHE_DIR"):
        return Path(os.environ["TUIPLAYER_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tuiplayer"


def content_hash(audio: np.ndarray) -> str:
    """A hash of decoded audio (n_samples, 2) float32: the same song in any file, the same key."""
    return hashlib.blake2b(np.ascontiguousarray(audio, dtype=np.float32), digest_size=16).hexdigest()


def _checksum(array: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(array), digest_size=16).hexdigest()


class StemCache:
    """Stems of whole songs per (content hash, model sha256), with an LRU size limit."""

    def __init__(self, root: Path | None = None, limit_mb: float | None = None) -> None:
        self.root = (root or cache_dir()) / "stems"
        if limit_mb is None:
            limit_mb = float(os.environ.get("TUIPLAYER_CACHE_MB", DEFAULT_LIMIT_MB))
        self.limit_bytes = int(limit_mb * 1024 * 1024)

    def _paths(self, content: str, model_sha256: str) -> tuple[Path, Path]:
        stem = f"{content}-{model_sha256[:16]}"
        return self.root / f"{stem}.npy", self.root / f"{stem}.json"

    def has(self, content: str, model_sha256: str) -> bool:
        """Whether an entry is there (load still checks it)."""
        return all(path.exists() for path in self._paths(content, model_sha256))

    def load(self, audio: np.ndarray, content: str, model_sha256: str) -> np.ndarray | None:
        """The cached vocals, drums and bass (n_samples, 2, 3) float16 of this audio and model, or None.

        `stems.complete(audio, stored)` gives all four stems.

        A missing, partial or corrupt entry is None (and removed, so it gets rebuilt).
        """
        data, meta = self._paths(content, model_sha256)
        if not data.exists() or not meta.exists():
            _remove(data, meta)  # half an entry is no entry
            return None
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            stored = np.load(data, allow_pickle=False)
            if stored.shape != (len(audio), audio.shape[1], STORED_STEMS) or _checksum(stored) != info["checksum"]:
                raise ValueError("entry does not match its description")
        except Exception:  # whatever is wrong with an entry (empty, truncated, a JSON list, not an
            _remove(data, meta)  # array…), it is no entry: removed, then rebuilt
            return None
        for path in (data, meta):
            os.utime(path)  # most recently used now
        return stored

    def store(self, stems: np.ndarray, content: str, model_sha256: str) -> str | None:
        """Keep stems (n_samples, 2, 4 or 3: other is not needed); None, or a one-line reason they were not kept."""
        data, meta = self._paths(content, model_sha256)
        stored = stems[..., :STORED_STEMS].astype(np.float16, copy=False)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._make_room(stored.nbytes)
            atomic_write(data, lambda handle: np.save(handle, stored, allow_pickle=False), force=True)
            write_text(meta, json.dumps({"shape": list(stored.shape), "checksum": _checksum(stored)}), force=True)
        except OSError as error:
            _remove(data, meta)
            return f"stems not cached in {self.root} ({error.strerror or error})"
        return None

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last use, bytes, data file) of every entry, least recently used first."""
        found = []
        for data in self.root.glob("*.npy"):
            try:
                stat = data.stat()
                size = stat.st_size + data.with_suffix(".json").stat().st_size
            except OSError:
                continue
            found.append((stat.st_mtime, size, data))
        return sorted(found)

    def _make_room(self, incoming: int) -> None:
        entries = self.entries()
        total = sum(size for _, size, _ in entries) + incoming
        for _, size, data in entries:
            if total <= self.limit_bytes:
                break
            _remove(data, data.with_suffix(".json"))
            total -= size


def _remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def cached_or_separated(cache: StemCache | None, audio: np.ndarray, model_sha256: str,
                        separate: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, bool, str | None]:
    """All stems (n_samples, 2, 4) of `audio` by the model with that sha256: from the cache, else
    `separate(audio)`, then kept there. Returns (stems, whether they came from the cache, a
    one-line reason they could not be kept or None). The player's engine does the same block
    by block (separation.engine)."""
    if cache is None:
        return separate(audio), False, None
    content = content_hash(audio)
    stored = cache.load(audio, content, model_sha256)
    if stored is not None:
        return complete(audio, stored), True, None
    stems = separate(audio)
    return stems, False, cache.store(stems, content, model_sha256)
