"""What the player remembers of each song: its last mix, tempo, pitch, loop and position.

Opened again — from any file or folder, since a song is known by its decoded audio (the
stem cache's content hash) — a song comes back as it was left: gains, mutes, solos, tempo and
pitch, the A-B loop and the playhead. One small JSON file per song in `$XDG_STATE_HOME/tuiplayer/songs/`
(default `~/.local/state/tuiplayer/songs/`), written atomically; at most MAX_SONGS are kept
(the least recently played go first). A file that is corrupt, foreign or from a song of
another length is ignored (and replaced at the next save): remembering never stops a song
from opening.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tuiplayer.config import STEMS
from tuiplayer.files import write_text

FORMAT = "tuiplayer song state 1"
MAX_SONGS = 1000
"""Songs remembered; older ones are forgotten (each file is ~300 bytes)."""

END_MARGIN_S = 5.0
"""A song left within this of its end starts from the beginning next time."""


def state_dir() -> Path:
    """`$XDG_STATE_HOME/tuiplayer/songs`, else `~/.local/state/tuiplayer/songs`."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "tuiplayer" / "songs"


@dataclass(frozen=True)
class SongState:
    """A song as it was left. Lists are per stem, in STEMS order; times in seconds."""

    duration_s: float
    position_s: float
    gains_db: tuple[float, ...]
    muted: tuple[bool, ...]
    soloed: tuple[bool, ...]
    loop_s: tuple[float, float] | None = None
    tempo: float = 1.0
    semitones: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, raw: Any) -> SongState | None:
        """The state in `raw` (as as_json wrote it), or None if it is not one."""
        try:
            if raw.get("format") != FORMAT:
                return None
            n = len(STEMS)
            state = cls(
                duration_s=float(raw["duration_s"]), position_s=float(raw["position_s"]),
                gains_db=tuple(float(g) for g in raw["gains_db"]), muted=tuple(bool(m) for m in raw["muted"]),
                soloed=tuple(bool(s) for s in raw["soloed"]),
                loop_s=None if raw.get("loop_s") is None else (float(raw["loop_s"][0]), float(raw["loop_s"][1])),
                tempo=float(raw.get("tempo", 1.0)), semitones=int(raw.get("semitones", 0)),
            )
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            return None
        numbers = (state.duration_s, state.position_s, state.tempo, *state.gains_db, *(state.loop_s or ()))
        if not all(math.isfinite(x) for x in numbers) or not (len(state.gains_db) == len(state.muted)
                                                               == len(state.soloed) == n):
            return None
        return state


def _path(key: str, folder: Path | None) -> Path:
    return (folder or state_dir()) / f"{key}.json"


def recall(key: str, duration_s: float, folder: Path | None = None) -> SongState | None:
    """The state the song with content hash `key` (and this duration) was left in, or None."""
    try:
        raw = json.loads(_path(key, folder).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    state = SongState.from_json(raw)
    if state is None or abs(state.duration_s - duration_s) > 0.01:
        return None
    return state


def remember(key: str, state: SongState, folder: Path | None = None) -> str | None:
    """Keep the song's state; None, or a one-line reason it could not be kept."""
    path = _path(key, folder)
    try:
        write_text(path, json.dumps(state.as_json()) + "\n", force=True)
        _forget_oldest(path.parent)
    except OSError as error:
        return f"the song's mix was not remembered in {path.parent} ({error.strerror or error})"
    return None


def _forget_oldest(folder: Path) -> None:
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
    for path in files[: max(0, len(files) - MAX_SONGS)]:
        with contextlib.suppress(OSError):
            path.unlink()
