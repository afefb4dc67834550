"""Writing files atomically, never clobbering what a user has.

Every file tuiplayer writes (stems, remixes, reports, cache entries) goes through
`atomic_write`: the content is written to a temporary name in the target folder, flushed to
disk, then moved into place in one step, so a crash or a full disk never leaves a half-written
file behind and never damages the file that was there.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from tuiplayer.errors import OutputExistsError


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
            _move_no_clobber(tmp, path)
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


def _move_no_clobber(tmp: Path, path: Path) -> None:
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
