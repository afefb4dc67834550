"""Many songs: what `tuiplayer FILE_OR_FOLDER_OR_M3U...` plays, in order (issue 15, part 1).

- a file is a song;
- a folder is every audio file under it (recursively), in natural order ("2 x" before "10 x",
  case ignored), other files skipped;
- an `.m3u` / `.m3u8` playlist is its entries in order: comments (`#…`) skipped, relative
  paths resolved against the playlist's own folder, `file://` URLs accepted; an entry that is
  missing or not audio is skipped with a notice; a playlist's folders and nested playlists are
  expanded the same way (a playlist that includes itself is read once).

`expand` returns the songs and the notices; no song at all is BadInput (one line).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from tuiplayer.errors import BadInput
from tuiplayer.files import shown

AUDIO_SUFFIXES = frozenset({
    ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".mp4", ".aif", ".aiff", ".wma", ".webm",
})
"""File name endings taken as audio inside folders and playlists (a file named on the command
line is tried whatever its name)."""

PLAYLIST_SUFFIXES = frozenset({".m3u", ".m3u8"})


@dataclass
class Songs:
    """What the arguments expand to: the songs in order, and what was skipped, one line each."""

    paths: list[Path] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def natural_key(path: Path) -> tuple[object, ...]:
    """Sort key: numbers compare as numbers, letters without case ("Track 2" < "track 10")."""
    return tuple(int(part) if part.isdigit() else part.casefold()
                 for part in re.split(r"(\d+)", path.as_posix()))


def expand(arguments: Sequence[str | os.PathLike[str]]) -> Songs:
    """The songs the command line names (see the module docstring); BadInput if none."""
    songs = Songs()
    seen_playlists: set[Path] = set()
    for argument in arguments:
        path = Path(argument)
        if path.suffix.lower() in PLAYLIST_SUFFIXES and path.is_file():
            _read_playlist(path, songs, seen_playlists)
        elif path.is_dir():
            found = _folder(path)
            if not found:
                songs.notices.append(f"{shown(path)}: no audio files in this folder")
            songs.paths.extend(found)
        else:
            songs.paths.append(path)  # checked when opened: its one-line error then
    if not songs.paths:
        raise BadInput("no songs to play" + (f": {'; '.join(songs.notices[:3])}" if songs.notices else ""))
    return songs


def _folder(folder: Path) -> list[Path]:
    return sorted((p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()),
                  key=natural_key)


def _read_playlist(playlist: Path, songs: Songs, seen: set[Path]) -> None:
    real = playlist.resolve()
    if real in seen:
        songs.notices.append(f"{shown(playlist)}: includes itself; read once")
        return
    seen.add(real)
    try:
        text = playlist.read_bytes().decode("utf-8-sig" if playlist.suffix.lower() == ".m3u8" else "utf-8",
                                            errors="replace")
    except OSError as error:
        songs.notices.append(f"{shown(playlist)}: cannot read it ({error.strerror or error})")
        return
    skipped = 0
    for entry in _entries(text.splitlines()):
        path = _entry_path(entry, playlist.parent)
        if path is None:
            skipped += 1
            if skipped <= 3:
                songs.notices.append(f"{shown(playlist)}: skipped {shown(entry)} (a stream: only files are separated)")
        elif path.suffix.lower() in PLAYLIST_SUFFIXES and path.is_file():
            _read_playlist(path, songs, seen)
        elif path.is_dir():
            songs.paths.extend(_folder(path))
        elif path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES:
            songs.paths.append(path)
        else:
            skipped += 1
            if skipped <= 3:
                songs.notices.append(f"{shown(playlist)}: skipped {shown(entry)} "
                                     f"({'not found' if not path.exists() else 'not an audio file'})")
    if skipped > 3:
        songs.notices.append(f"{shown(playlist)}: {skipped} entries skipped in all")


def _entries(lines: Iterable[str]) -> Iterable[str]:
    for line in lines:
        entry = line.strip()
        if entry and not entry.startswith("#"):
            yield entry


def _entry_path(entry: str, base: Path) -> Path | None:
    """A playlist entry as a path (relative ones against the playlist's folder); None for URLs
    that are not files (streams are not songs this player can separate)."""
    if "://" in entry:
        url = urlparse(entry)
        if url.scheme != "file":
            return None
        return Path(unquote(url.path))
    path = Path(entry.replace("\\", "/") if "\\" in entry and "/" not in entry else entry)
    return Path(os.path.normpath(path if path.is_absolute() else base / path))
