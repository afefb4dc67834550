"""Writing files atomically, never clobbering what a user has.

Every file tuiplayer writes (stems, remixes, reports, cache entries) goes through
`atomic_write`: the content is written to a temporary name in the target folder, flushed to
disk, then moved into place in one step, so a crash or a full disk never leaves a half-written
file behind and never damages the file that was there.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from tuiplayer.errors import OutputError, OutputExistsError

SHOWN_PATH_CHARS = 120
"""Longer paths are shortened in messages (their end kept: the part a user recognises)."""

USER_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG,
                         errno.ENOTDIR, errno.EISDIR, errno.ENOENT, errno.EEXIST, errno.ELOOP, errno.EFBIG,
                         errno.EMFILE, errno.ENXIO, errno.ENODEV, errno.EIO})
"""File-system errors that come from what a user asked for or has (a full disk, a read-only
folder, a name too long…), not from a bug: one line and exit 2 (cli.main)."""


def shown(path: str | os.PathLike[str]) -> str:
    """A path for a one-line message: as it is, or `…` and its last SHOWN_PATH_CHARS characters."""
    text = os.fsdecode(path)
    return text if len(text) <= SHOWN_PATH_CHARS else "…" + text[-SHOWN_PATH_CHARS:]


def os_error_reason(error: OSError) -> str:
    """What happened, in a few words (e.g. "no space left on the device")."""
    return {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
            errno.EROFS: "read-only file system", errno.ENAMETOOLONG: "file name too long",
            errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
            errno.ENOTDIR: "a part of the path is not a folder"}.get(error.errno or 0,
                                                                     (error.strerror or str(error)).lower())


def describe_os_error(error: OSError) -> str:
    """An OSError as one line: `PATH: what happened`."""
    reason = os_error_reason(error)
    return f"{shown(error.filename)}: {reason}" if error.filename is not None else reason


def check_writable(path: str | os.PathLike[str], *, force: bool = False) -> None:
    """Before any long work: OutputExistsError if path exists (without force); OutputError
    (one line) if it could not be written: a folder at path, a file where a folder must be, a
    folder without permission or on a read-only file system, a name too long. Missing folders
    are fine (atomic_write makes them)."""
    path = Path(path)
    if any(len(os.fsencode(part)) > 255 for part in path.parts) or len(os.fsencode(path)) >= 4096:
        raise OutputError(f"{shown(path)}: file name too long")
    if path.is_dir():
        raise OutputError(f"{shown(path)}: is a folder (give a file name)")
    if path.exists() and not force:
        raise OutputExistsError(f"{shown(path)}: exists already (use --force to overwrite)")
    check_folder_writable(path.parent)


def check_folder_writable(folder: str | os.PathLike[str]) -> Path:
    """OutputError (one line) unless files can be made in folder (made first if missing):
    returns the nearest folder that exists."""
    existing = Path(folder)
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{shown(existing)}: is a file, not a folder (choose another place)")
    if not os.access(existing, os.W_OK | os.X_OK):
        reason = "read-only file system" if _read_only(existing) else "permission denied"
        raise OutputError(f"{shown(existing)}: cannot write there ({reason})")
    return existing


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None], *, force: bool = False) -> Path:
    """Create `path` with what `write(handle)` writes, atomically.

    Without `force` an existing file is never replaced (OutputExistsError), even one that
    appears while we write; with it, the old file is replaced in one step.
    """
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: exists already (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    # a replaced file keeps its permissions; a new one gets the usual ones (mkstemp's are 0600)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if force:
            os.replace(tmp, path)
        else:
            move_no_clobber(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def move_no_clobber(tmp: Path, path: Path) -> None:
    """Give the file `tmp` the name `path` unless that exists (OutputExistsError), in one step
    where the file system has hard links (`tmp` stays; the caller removes it)."""
    try:
        os.link(tmp, path)  # fails if path appeared meanwhile
    except FileExistsError:
        raise OutputExistsError(f"{path}: exists already (use --force to overwrite)") from None
    except OSError:  # a file system without hard links: check, then replace
        if path.exists():
            raise OutputExistsError(f"{path}: exists already (use --force to overwrite)") from None
        os.replace(tmp, path)


def write_text(path: str | os.PathLike[str], text: str, *, force: bool = False) -> Path:
    """Write UTF-8 text atomically (see atomic_write)."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), force=force)
