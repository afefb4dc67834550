"""Writing separated stems as files: `tuiplayer separate` and the player's export.

Stems of `song.flac` go to `<out>/song/{vocals,drums,bass,other}.<fmt>`, at the input's
sample rate and exact length (stereo), each written atomically; nothing is overwritten
without `force`, and that is checked for all four files before any work is done.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from tuiplayer import files
from tuiplayer.audio.io import OUTPUT_FORMATS, AudioInfo, restore, write_audio
from tuiplayer.config import STEMS
from tuiplayer.errors import BadInput, OutputError, OutputExistsError
from tuiplayer.files import describe_os_error, move_no_clobber, shown


def stem_paths(out_dir: Path, song: Path, fmt: str) -> dict[str, Path]:
    """Where the stems of `song` go: {stem: out_dir/<song name without extension>/<stem>.<fmt>}."""
    if fmt not in OUTPUT_FORMATS:
        raise BadInput(f"cannot write .{fmt} files (use {', '.join(OUTPUT_FORMATS)})")
    name = song.name.removesuffix(".stem.mp4") if song.name.endswith(".stem.mp4") else song.stem
    return {stem: out_dir / name / f"{stem}.{fmt}" for stem in STEMS}


def check_free(paths: Iterable[Path], force: bool) -> None:
    """OutputExistsError (one line) if any of paths exists and force is not given."""
    if force:
        return
    taken = [p for p in paths if p.exists()]
    if taken:
        more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
        raise OutputExistsError(f"{taken[0]}{more}: exists already (use --force to overwrite)")


def check_writable(paths: Iterable[Path], force: bool = False) -> None:
    """files.check_writable for each of paths: one line before any work if one cannot be written."""
    for path in paths:
        files.check_writable(path, force=force)


def write_stems(stems: np.ndarray, source: AudioInfo, paths: dict[str, Path], force: bool) -> None:
    """Write stems (n_samples at SIGNAL.sample_rate, 2, n_stems) back at the source's rate and
    length (write_tracks: all or none)."""
    write_tracks({stem: stems[..., j] for j, stem in enumerate(STEMS)}, source, paths, force)


def write_tracks(tracks: dict[str, np.ndarray], source: AudioInfo, paths: dict[str, Path], force: bool) -> None:
    """Write each track (n_samples at SIGNAL.sample_rate, 2) to paths[name], back at the
    source's rate and length: all of them or none (on a full disk nothing new is left behind,
    and no file that was there is harmed); OutputError (one line) when they cannot be written."""
    folder = next(iter(paths.values())).parent
    made = not folder.exists()
    written: list[Path] = []
    try:
        with ExitStack() as staged:
            parts = {}
            for name, samples in tracks.items():
                # each into a hidden part file first (files.atomic_write), kept until all are done
                part = paths[name].with_name(f".{paths[name].stem}.part{paths[name].suffix}")
                staged.callback(part.unlink, missing_ok=True)
                write_audio(part, restore(samples, source), source.sample_rate, force=True)
                parts[name] = part
            for name, part in parts.items():
                if force:
                    os.replace(part, paths[name])
                else:
                    move_no_clobber(part, paths[name])
                written.append(paths[name])
    except (OSError, OutputExistsError) as error:
        for path in written:
            path.unlink(missing_ok=True)
        if made:
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(error, OutputExistsError):
            raise
        raise OutputError(f"{shown(folder)}: nothing written ({describe_os_error(error)})") from None
