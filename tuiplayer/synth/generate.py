"""`generate`: synthetic multitrack songs in the MUSDB18-HQ layout, in parallel, reproducibly.

    OUT/<song>/{mixture,vocals,drums,bass,other}.wav   44.1 kHz stereo float32
    OUT/<song>/song.json                               the arrangement and how it was made

Song i of a set depends only on (seed, i), so the same seed gives the same bytes whatever the
number of jobs. The mixture is the float32 sum of the stems as written, in STEMS order.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict
from pathlib import Path

import numpy as np

from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.errors import BadInput, OutputError, OutputExistsError
from tuiplayer.files import atomic_write, check_folder_writable, shown, write_text
from tuiplayer.synth.compose import compose
from tuiplayer.synth.drumkits import Kit, load_kits
from tuiplayer.synth.resources import Resources, find_resources
from tuiplayer.synth.score import Song
from tuiplayer.synth.styles import AVL_RECIPE

MIN_SECONDS, MAX_SECONDS = 2.0, 1200.0
"""Allowed song lengths in seconds."""

SONG_JSON_VERSION = 1

RECIPES = (1, 2, 3)
"""Production recipes, oldest first. A seed gives the same songs under each, produced
differently: 1, the first (the shipped models' data); 2 adds guitar amps (production.amp) and
bass tone (production.bass_tone); 3 plays some songs' kits on the recorded AVL drum kits
(render.AVL_SHARE of the genres in styles.ACOUSTIC_KIT_GENRES, from styles.AVL_RECIPE on).
Song i's bytes depend on (recipe, seed, i)."""
RECIPE = RECIPES[-1]
"""What `tuiplayer synth` renders unless --recipe says otherwise."""

_KITS: dict[Path, dict[str, Kit]] = {}


def _kits(drumkits_dir: Path) -> dict[str, Kit]:
    """Hydrogen kits, parsed once per process."""
    if drumkits_dir not in _KITS:
        _KITS[drumkits_dir] = load_kits(drumkits_dir)
    return _KITS[drumkits_dir]


def mixture_of(stems: dict[str, np.ndarray]) -> np.ndarray:
    """The float32 sum of the stems in STEMS order: (n, 2) float32."""
    mixture = np.zeros_like(stems[STEMS[0]], dtype=np.float32)
    for stem in STEMS:
        mixture += stems[stem].astype(np.float32, copy=False)
    return mixture


def float_wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """A 32-bit float WAV file of `samples` (n, channels), byte-for-byte reproducible.

    (libsndfile adds a PEAK chunk holding the time of writing, so its float WAVs of the same
    audio differ from run to run; this writes the same RIFF/fmt/fact/data layout without it.)
    """
    data = np.ascontiguousarray(samples, dtype="<f4")
    frames, channels = data.shape
    fmt = struct.pack("<HHIIHH", 3, channels, sample_rate, sample_rate * channels * 4, channels * 4, 32)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<II", 4, frames)
            + b"data" + struct.pack("<I", data.nbytes) + data.tobytes())
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write_wav(path: Path, samples: np.ndarray, force: bool) -> Path:
    """Write a float WAV atomically (never replacing a file without `force`)."""
    payload = float_wav_bytes(samples, SIGNAL.sample_rate)
    return atomic_write(path, lambda handle: handle.write(payload), force=force)


def song_document(song: Song, info: dict[str, object]) -> dict[str, object]:
    """What song.json holds: the arrangement, the instruments, the production settings."""
    return {
        "version": SONG_JSON_VERSION,
        "generator": "tuiplayer.synth",
        "name": song.name,
        "seed": song.seed,
        "index": song.index,
        "sample_rate": SIGNAL.sample_rate,
        "seconds": song.seconds,
        "genre": song.genre,
        "tempo_bpm": song.tempo_bpm,
        "key": song.key,
        "feel": song.feel,
        "swing": song.swing,
        "time_signature": f"{song.beats_per_bar}/4",
        "sections": [asdict(s) | {"stems": list(s.stems), "chords": list(s.chords)} for s in song.sections],
        "stems": {
            "vocals": {"voice": song.vocals.singer.voice, "language": song.vocals.singer.language,
                       "gender": song.vocals.singer.gender, "style": song.vocals.singer.style,
                       "phrases": len(song.vocals.lead), "harmony_phrases": len(song.vocals.harmonies),
                       "notes": sum(len(p.notes) for p in song.vocals.lead),
                       "words": sorted({n.word for p in song.vocals.lead for n in p.notes if n.word})},
            "drums": [{"name": d.name, "source": d.source, "kit": d.kit, "hits": len(d.hits)} for d in song.drums],
            "parts": [{"name": p.name, "stem": p.stem, "role": p.role, "program": p.program,
                       "soundfont": Path(song.soundfonts[p.soundfont]).name, "notes": len(p.notes),
                       "pan": round(p.pan, 3)} for p in song.parts],
        },
        "arrangement": song.info,
        "production": info,
    }


def render_to_folder(song: Song, resources: Resources, out_dir: Path, force: bool, recipe: int = RECIPE) -> Path:
    """Render one song and write its folder (stems, mixture, then song.json last)."""
    from tuiplayer.synth.fluid import shared_renderer
    from tuiplayer.synth.render import render_song

    renderer = shared_renderer(resources.soundfonts + resources.drum_soundfonts)
    drum_fonts = tuple(range(len(resources.soundfonts), len(renderer.soundfonts)))
    rendered = render_song(song, renderer, _kits(resources.drumkits_dir), resources.espeak, recipe, drum_fonts)
    folder = out_dir / song.name
    stems = {stem: np.ascontiguousarray(rendered.stems[stem], dtype=np.float32) for stem in STEMS}
    for stem in STEMS:
        write_wav(folder / f"{stem}.wav", stems[stem], force)
    write_wav(folder / "mixture.wav", mixture_of(stems), force)
    document = song_document(song, rendered.info)
    write_text(folder / "song.json", json.dumps(document, indent=1, default=str) + "\n", force=force)
    return folder


def _check_arguments(songs: int, seconds: float, seed: int, jobs: int | None, recipe: int) -> None:
    if not isinstance(songs, int) or songs < 1:
        raise BadInput(f"--songs must be a whole number of at least 1 (got {songs!r})")
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and MIN_SECONDS <= seconds <= MAX_SECONDS):
        raise BadInput(f"--seconds must be between {MIN_SECONDS:g} and {MAX_SECONDS:g} (got {seconds!r})")
    if not isinstance(seed, int) or seed < 0:
        raise BadInput(f"--seed must be a whole number of at least 0 (got {seed!r})")
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise BadInput(f"--jobs must be a whole number of at least 1 (got {jobs!r})")
    if recipe not in RECIPES:
        raise BadInput(f"--recipe must be one of {', '.join(map(str, RECIPES))} (got {recipe!r})")


SONG_FILES = 5
"""Audio files per song: the mixture and the four stems, float32 stereo WAV."""


def _check_room(out_dir: Path, songs: int, seconds: float) -> None:
    """OutputError (one line) if out_dir is not a folder we can write, or the songs would not
    fit on its disk (which also bounds the memory of planning them)."""
    existing = check_folder_writable(out_dir)
    need = songs * seconds * SIGNAL.sample_rate * SIGNAL.channels * 4 * SONG_FILES
    free = shutil.disk_usage(existing).free
    if need > free:
        raise OutputError(f"{shown(out_dir)}: {songs:,} songs of {seconds:g} s need about {need / 1e9:,.1f} GB, "
                          f"and {free / 1e9:,.1f} GB are free there")


def plan_songs(songs: int, seconds: float, seed: int, resources: Resources) -> list[Song]:
    """Compose every song of the set (cheap: scores only, no audio)."""
    fonts = tuple(str(p) for p in resources.soundfonts)
    kits = _kits(resources.drumkits_dir)
    return [compose(seed, index, float(seconds), fonts, kits) for index in range(songs)]


def generate(
    out_dir: Path,
    songs: int,
    seconds: float,
    seed: int,
    soundfonts: Sequence[Path] | None = None,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
    recipe: int | None = None,
) -> list[Path]:
    """Write `songs` synthetic songs of `seconds` each under `out_dir`; returns their folders.

    seed: the set's seed (song i depends only on (seed, i)). soundfonts: .sf2 files to draw
    instruments from (default: the Debian GM soundfonts FluidR3_GM and TimGM6mb). jobs: worker
    processes (default: CPU count). progress(done, total) is called as songs finish. An existing
    song folder is an OutputExistsError unless `force`. recipe: how the songs are produced
    (RECIPES; None: the newest). Missing tools or soundfonts: BadInput.
    """
    recipe = RECIPE if recipe is None else recipe
    _check_arguments(songs, seconds, seed, jobs, recipe)
    out_dir = Path(out_dir)
    _check_room(out_dir, songs, seconds)
    resources = find_resources(soundfonts, avl_kits=recipe >= AVL_RECIPE)
    plan = plan_songs(songs, seconds, seed, resources)
    folders = [out_dir / song.name for song in plan]
    if not force:
        for folder in folders:
            if folder.exists():
                raise OutputExistsError(f"{folder}: exists already (use --force to overwrite)")
    out_dir.mkdir(parents=True, exist_ok=True)
    total = len(plan)
    if progress is not None:
        progress(0, total)
    workers = min(jobs or os.cpu_count() or 1, total)
    if workers == 1:
        for done, song in enumerate(plan, start=1):
            render_to_folder(song, resources, out_dir, force, recipe)
            if progress is not None:
                progress(done, total)
        return folders
    # "spawn", not "fork": libfluidsynth loads soundfonts with OpenMP, whose threads do not
    # survive a fork (a forked worker hangs in its first sfload). A script that calls generate
    # with jobs > 1 therefore needs the usual `if __name__ == "__main__":` guard.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: set[Future[Path]] = {pool.submit(render_to_folder, song, resources, out_dir, force, recipe)
                                      for song in plan}
        done = 0
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    future.result()  # re-raises a worker's error here
                    done += 1
                    if progress is not None:
                        progress(done, total)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return folders
