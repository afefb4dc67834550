"""Writing separated stems as files: `tuiplayer separate`, `tuiplayer export` and the player's `e`.

Stems of `song.flac` go to `<out>/song/{vocals,drums,bass,other}.<fmt>`, at the input's
sample rate and exact length (stereo); an export adds the remix (`remix.<fmt>`, or e.g.
`remix-tempo80-pitch+2.<fmt>` at another tempo and pitch) and a Native Instruments Stems file
(`song.stem.mp4`, audio.ni_stems). All of a song's files are written or none (write_all);
nothing is overwritten without `force`, and that is checked for all files before any work.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from tuiplayer import files
from tuiplayer.audio import ni_stems
from tuiplayer.audio.io import OUTPUT_FORMATS, AudioInfo, resample, restore, write_audio
from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.errors import BadInput, OutputError, OutputExistsError
from tuiplayer.files import describe_os_error, move_no_clobber, shown
from tuiplayer.playback import stretch


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
    source's rate and length: all of them or none (write_all)."""
    write_all({paths[name]: functools.partial(_write_track, samples=samples, source=source)
               for name, samples in tracks.items()}, force)


def _write_track(part: Path, samples: np.ndarray, source: AudioInfo) -> None:
    write_audio(part, restore(samples, source), source.sample_rate, force=True)


def write_all(writers: dict[Path, Callable[[Path], object]], force: bool) -> None:
    """Make each path with its writer (called with a hidden part file next to the path, to
    write there): all of them or none — on a full disk nothing new is left behind, and no file
    that was there is harmed; OutputError (one line) when they cannot be written,
    OutputExistsError without force when one exists."""
    paths = list(writers)
    folder = paths[0].parent
    made = not folder.exists()
    written: list[Path] = []
    try:
        with ExitStack() as staged:
            parts = {}
            for path, write in writers.items():
                # each into a hidden part file first (files.atomic_write), kept until all are done
                part = path.with_name(f".{path.name}.part{path.suffix}")  # (the suffix tells the format)
                staged.callback(part.unlink, missing_ok=True)
                write(part)
                parts[path] = part
            for path, part in parts.items():
                if force:
                    os.replace(part, path)
                else:
                    move_no_clobber(part, path)
                written.append(path)
    except (OSError, OutputExistsError) as error:
        for path in written:
            path.unlink(missing_ok=True)
        if made:
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(error, OutputExistsError):
            raise
        raise OutputError(f"{shown(folder)}: nothing written ({describe_os_error(error)})") from None


def remix_name(tempo: float, semitones: int) -> str:
    """'remix', or with the tempo and pitch it was made at: 'remix-tempo80-pitch+2'."""
    name = "remix"
    if tempo != 1.0:
        name += f"-tempo{round(100 * tempo)}"
    if semitones:
        name += f"-pitch{semitones:+d}"
    return name


EXPORTS = ("stems", "remix", "ni")
"""What an export can write: the four stems, the remix, a Native Instruments Stems file."""


def export_paths(out_dir: Path, song: Path, fmt: str, *, what: Iterable[str] = EXPORTS, tempo: float = 1.0,
                 semitones: int = 0) -> dict[str, Path]:
    """Where an export of `song` goes, all in out_dir/<song name>/: {stem: <stem>.<fmt>} for the
    stems, {"remix": <remix_name>.<fmt>}, {"ni": <song name>.stem.mp4}, as `what` asks."""
    stems = stem_paths(out_dir, song, fmt)
    folder = stems[STEMS[0]].parent
    paths: dict[str, Path] = {}
    if "remix" in what:
        paths["remix"] = folder / f"{remix_name(tempo, semitones)}.{fmt}"
    if "stems" in what:
        paths.update(stems)
    if "ni" in what:
        paths["ni"] = folder / f"{folder.name}{ni_stems.SUFFIX}"
    return paths


def write_export(every: np.ndarray, gains: tuple[float, ...], source: AudioInfo, paths: dict[str, Path], *,
                 tempo: float = 1.0, semitones: int = 0, force: bool = False) -> None:
    """Write what `paths` (export_paths) name, all or none: from `every` stem (n_samples at
    SIGNAL.sample_rate, 2, n_stems, summing to the song), the remix at `gains` (one per stem)
    and, when set, `tempo` and `semitones` (stretched offline: its length is the song's / tempo);
    the stems and the NI file at the song's own tempo (DJ software sets its own)."""
    writers: dict[Path, Callable[[Path], object]] = {}
    for name, path in paths.items():
        if name == "remix":
            remix = np.einsum("nck,k->nc", every, np.asarray(gains, dtype=np.float32))
            if (tempo, semitones) != (1.0, 0):
                remix = stretch.render(remix, tempo, semitones)
                writers[path] = functools.partial(_write_stretched, samples=remix, source=source)
            else:
                writers[path] = functools.partial(_write_track, samples=remix, source=source)
        elif name == "ni":
            song = every.sum(axis=-1)
            parts = {stem: every[..., j] for j, stem in enumerate(STEMS)}
            writers[path] = functools.partial(ni_stems.write_ni_stems, mix=song, stems=parts, force=True)
        else:
            writers[path] = functools.partial(_write_track, samples=every[..., STEMS.index(name)], source=source)
    write_all(writers, force)


def _write_stretched(part: Path, samples: np.ndarray, source: AudioInfo) -> None:
    """A track whose length is its own (a remix at another tempo): back at the source's rate."""
    write_audio(part, resample(samples, SIGNAL.sample_rate, source.sample_rate), source.sample_rate, force=True)
