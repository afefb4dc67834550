"""Real recordings as training material, with the labels each one can give (issue 17).

Real multitrack songs cannot be downloaded here, but real *recordings* can, from Debian's
archive. None has all four stems, so each is used for what it does know, in four roles:

- ``instrumental``: a whole instrumental piece (game soundtracks): drums, bass and other with
  no voice. Under a generated voice (a multitrack song's vocals) it makes an example whose
  vocals are known and whose drums + bass + other are known only as their sum.
- ``guitar``: a real guitar alone (a Frets on Fire song's guitar track). Added to the "other"
  stem of a multitrack excerpt: every stem still known.
- ``drums``: a real drum loop (Sonic Pi's breaks), looped to the excerpt. In place of the drums
  of a multitrack excerpt: every stem still known.
- ``band``: a Frets on Fire song as a whole, its guitar plus the rest of the band (which may
  sing): only that "other" holds at least the guitar (a lower bound).

`prepare` decodes the packages' files into a folder (16-bit WAV at SIGNAL.sample_rate, one
folder per role; `sources.json` names each file's package, original path, licence and levels,
and for a band how its guitar lines up with the rest: `alignment_ms`). Nearly silent
recordings and bands whose guitar is not shown to line up are left out (`usable`),
and `RealSources.open` reads excerpts from it (from disk: ~8 hours of audio is too much to keep
in memory beside a training run). `ExampleMaker` asks `RealSources.excerpt` for a share of its
examples (`tuiplayer train --real FOLDER --real-share P`). The parts and labels it returns are
those of `tuiplayer.data.examples` (shapes there): mixture = Σ parts, exactly.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf

from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.data.augment import DEFAULT_AUGMENT, augment_stems
from tuiplayer.data.labels import FULL_LABELS, labels
from tuiplayer.errors import BadInput
from tuiplayer.files import atomic_write, write_text

if TYPE_CHECKING:
    from tuiplayer.data.examples import ExampleMaker

ROLES = ("instrumental", "guitar", "drums", "band")

INDEX_FILE = "sources.json"

SILENT_DB = -40.0
"""A recording quieter than this (RMS dBFS) is left out (Wesnoth ships 10 s of silence)."""

ALIGNED_MS = 30.0
"""A band whose guitar's onsets line up with the rest's within this (alignment_ms) gives the
lower-bound label; others do not (the bound would be wrong where they are apart)."""


ONSET_HOP = 441
"""Samples per frame of the onset envelopes `alignment_ms` compares (10 ms)."""


@dataclass(frozen=True)
class Source:
    """Files of one Debian package in one role. pattern: a glob (for `band`, of the guitar
    files; the rest of the band is song.ogg beside each)."""

    package: str
    pattern: str
    role: str
    licence: str


GAMES = "/usr/share/games"
SOURCES: tuple[Source, ...] = (
    Source("wesnoth-1.16-music", f"{GAMES}/wesnoth/1.16/data/core/music/*.ogg", "instrumental",
           "GPL-2+ (debian/copyright's general statement; upstream: return_to_wesnoth.ogg CC-BY-SA-4.0)"),
    Source("warzone2100-music", f"{GAMES}/warzone2100/music/**/*.opus", "instrumental",
           "CC-BY-SA-3.0+ or GPL-2+ (25 files), GPL-2+ (5 files)"),
    Source("hyperrogue-music", "/usr/share/hyperrogue/music/*.ogg", "instrumental", "CC-BY-SA-3.0"),
    Source("singularity-music", f"{GAMES}/singularity/music/*.ogg", "instrumental", "CC-BY-SA-3.0"),
    Source("fretsonfire-songs-muldjord", f"{GAMES}/fretsonfire/data/songs/muldjord/*/guitar.ogg", "guitar",
           "CC-BY-SA-3.0 (Muldjord)"),
    Source("fretsonfire-songs-sectoid", f"{GAMES}/fretsonfire/data/songs/sectoid/*/guitar.ogg", "guitar",
           "Expat (MIT)"),
    Source("fretsonfire-songs-muldjord", f"{GAMES}/fretsonfire/data/songs/muldjord/*/guitar.ogg", "band",
           "CC-BY-SA-3.0 (Muldjord)"),
    Source("fretsonfire-songs-sectoid", f"{GAMES}/fretsonfire/data/songs/sectoid/*/guitar.ogg", "band",
           "Expat (MIT)"),
    Source("sonic-pi-samples", "/usr/share/sonic-pi/samples/loop_*.flac", "drums",
           "CC0-1.0 (the package's README; debian/copyright: CC0, MIT for some by its catch-all)"),
)
"""What `tuiplayer sources` collects, with the licence of each package's audio as its
debian/copyright says (read 2026-12-03; the packages' own files are the authority). All are
Debian main. Training on them is allowed by each; whether weights trained on share-alike or GPL
audio must carry those terms is unsettled, so every card names the sources it was trained on."""

DRUM_LOOPS = ("loop_breakbeat", "loop_compus", "loop_garzul", "loop_industrial", "loop_mika", "loop_perc1",
              "loop_perc2", "loop_safari", "loop_tabla")
"""Sonic Pi's loops that are drums or percussion only (the rest are drones, synths, noises);
not the Amen break (`loop_amen*`): its CC0 label may not cover the 1969 recording it is."""


@dataclass(frozen=True)
class RealMix:
    """How often each role makes a real-recording example (weights, normalised), and the levels
    it is put at (dB ranges, drawn uniformly): the voice over an instrumental, …"""

    instrumental: float = 0.5
    guitar: float = 0.2
    drums: float = 0.2
    band: float = 0.1
    voice_db: tuple[float, float] = (-6.0, 3.0)
    guitar_db: tuple[float, float] = (-6.0, 3.0)
    """A guitar's level against the "other" stem it joins."""
    loop_db: tuple[float, float] = (-3.0, 3.0)
    """A drum loop's level against the drums it replaces."""
    band_db: tuple[float, float] = (-6.0, 6.0)
    """A whole band's gain."""

    def weights(self, present: Sequence[str]) -> np.ndarray:
        """The roles' weights over ROLES, zero for roles with no files, summing to 1."""
        weights = np.array([getattr(self, role) if role in present else 0.0 for role in ROLES])
        if weights.sum() <= 0:
            raise BadInput("no real recordings for any role in use (run `tuiplayer sources` first)")
        return weights / weights.sum()


def _rms_db(samples: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    return round(20 * np.log10(rms), 2) if rms > 0 else -200.0


def _write_pcm16(path: Path, samples: np.ndarray, force: bool) -> None:
    def write(handle: Any) -> None:
        sf.write(handle, samples, SIGNAL.sample_rate, subtype="PCM_16", format="WAV")
    atomic_write(path, write, force=force)


def _name(path: str) -> str:
    """A file name for a source file: its folder and stem, safe."""
    p = Path(path)
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{p.parent.name}-{p.stem}")


def prepare(out: Path, sources: Sequence[Source] = SOURCES, *, force: bool = False,
            load: Callable[[str], np.ndarray] | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Decode every source file into out/<role>/<package>/<name>.wav (a band: <name>/guitar.wav
    and rest.wav) and write out/sources.json: one entry per file (role, package, source paths,
    licence, seconds, RMS levels). Packages that are not installed are named in the index as
    missing. Returns the index."""
    if load is None:
        from tuiplayer.audio.io import load as decode

        def load(path: str) -> np.ndarray:
            return decode(path).samples

    entries: list[dict[str, Any]] = []
    missing: list[str] = []
    for source in sources:
        files = sorted(glob.glob(source.pattern, recursive=True))
        if source.role == "drums":
            files = [f for f in files if Path(f).stem in DRUM_LOOPS]
        if not files:
            missing.append(source.package)
            continue
        for path in files:
            folder = out / source.role / source.package
            entry: dict[str, Any] = {"role": source.role, "package": source.package, "licence": source.licence}
            if source.role == "band":
                rest_path = str(Path(path).with_name("song.ogg"))
                guitar, rest = load(path), load(rest_path)
                n = min(len(guitar), len(rest))  # (the game plays them together, from one start)
                name = folder / _name(str(Path(path).parent))
                _write_pcm16(name / "guitar.wav", guitar[:n], force)
                _write_pcm16(name / "rest.wav", rest[:n], force)
                lag, clarity = alignment_ms(rest[:n], guitar[:n])
                entry.update(file=str(name.relative_to(out)), sources=[path, rest_path], seconds=n / SIGNAL.sample_rate,
                             rms_db={"guitar": _rms_db(guitar[:n]), "rest": _rms_db(rest[:n])},
                             lengths_s=[len(guitar) / SIGNAL.sample_rate, len(rest) / SIGNAL.sample_rate],
                             alignment={"guitar_late_ms": lag, "clarity": round(clarity, 1)})
            else:
                samples = load(path)
                target = folder / f"{_name(path)}.wav"
                _write_pcm16(target, samples, force)
                entry.update(file=str(target.relative_to(out)), sources=[path],
                             seconds=len(samples) / SIGNAL.sample_rate, rms_db={"all": _rms_db(samples)})
            entries.append(entry)
            log(f"{entry['role']:>12}  {entry['file']}  ({entry['seconds']:.0f} s)")
    seconds = {role: round(sum(e["seconds"] for e in entries if e["role"] == role), 1) for role in ROLES}
    index = {"sources": entries, "missing_packages": sorted(set(missing)), "seconds": seconds}
    write_text(out / INDEX_FILE, json.dumps(index, indent=1) + "\n", force=True)
    return index


class RealSources:
    """Excerpts of prepared real recordings (`prepare`), by role. Thread-safe (reads only)."""

    def __init__(self, folder: Path, mix: RealMix | None = None) -> None:
        folder = Path(folder)
        try:
            index = json.loads((folder / INDEX_FILE).read_text())
        except (OSError, ValueError) as error:
            raise BadInput(f"{folder}: not a folder of prepared real recordings ({error}; run `tuiplayer sources`)"
                           ) from None
        self.folder = folder
        self.mix = mix or RealMix()
        self.files: dict[str, list[tuple[Path, int]]] = {role: [] for role in ROLES}  # (path, samples)
        self.left_out: list[str] = []
        """Recordings not used: nearly silent, or a band whose guitar is not shown to line up."""
        for entry in index["sources"]:
            path = folder / entry["file"]
            if not usable(entry):
                self.left_out.append(entry["file"])
                continue
            first = path / "guitar.wav" if entry["role"] == "band" else path
            try:
                frames = sf.info(str(first)).frames
            except (RuntimeError, sf.LibsndfileError) as error:
                raise BadInput(f"{first}: cannot be read ({error}); run `tuiplayer sources` again") from None
            self.files[entry["role"]].append((path, int(frames)))
        self.weights = self.mix.weights([role for role, files in self.files.items() if files])

    def _read(self, path: Path, start: int, n: int, loop: bool = False) -> np.ndarray:
        """n frames (n, 2) float32 from `start`; a loop is repeated to length, else zero-padded."""
        with sf.SoundFile(str(path)) as handle:
            handle.seek(min(start, handle.frames))
            samples = handle.read(n if not loop else handle.frames, dtype="float32", always_2d=True)
        if samples.shape[1] == 1:
            samples = np.repeat(samples, 2, axis=1)
        if loop and len(samples):
            return np.resize(samples, (n, 2)).astype(np.float32)
        out = np.zeros((n, 2), dtype=np.float32)
        out[: len(samples)] = samples[:n]
        return out

    def _pick(self, role: str, rng: np.random.Generator, n: int) -> tuple[Path, int]:
        files = self.files[role]
        path, frames = files[int(rng.integers(len(files)))]
        return path, int(rng.integers(max(frames - n, 0) + 1))

    def excerpt(self, maker: ExampleMaker, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One example's parts float32 (len(STEMS), n, 2), augmented, and its labels."""
        n = maker.config.excerpt_samples
        role = ROLES[int(rng.choice(len(ROLES), p=self.weights))]
        vocals, drums, bass, other = (STEMS.index(s) for s in ("vocals", "drums", "bass", "other"))
        parts = np.zeros((len(STEMS), n, 2), dtype=np.float32)
        if role == "band":  # (the only role without a multitrack excerpt)
            path, start = self._pick(role, rng, n)
            parts[0] = self._read(path / "guitar.wav", start, n)
            parts[1] = self._read(path / "rest.wav", start, n)
            parts *= np.float32(10 ** (rng.uniform(*self.mix.band_db) / 20))  # (one gain: the band as mixed)
            return parts, labels(([STEMS[other]], True))
        stems = maker.excerpt_audio(rng)  # a multitrack excerpt, augmented
        if role == "guitar":
            path, start = self._pick(role, rng, n)
            part = self._single(maker, rng, self._read(path, start, n), other)
            stems[other] += _at_level(part, stems[other], rng, self.mix.guitar_db)
            return stems, FULL_LABELS
        if role == "drums":
            path, _ = self._pick(role, rng, n)
            part = self._single(maker, rng, self._read(path, 0, n, loop=True), drums)
            stems[drums] = _at_level(part, stems[drums], rng, self.mix.loop_db)
            return stems, FULL_LABELS
        path, start = self._pick(role, rng, n)  # instrumental
        parts[1] = self._single(maker, rng, self._read(path, start, n), other)
        parts[0] = _at_level(stems[vocals], parts[1], rng, self.mix.voice_db)
        return parts, labels(([STEMS[vocals]], False), ([STEMS[drums], STEMS[bass], STEMS[other]], False))

    @staticmethod
    def _single(maker: ExampleMaker, rng: np.random.Generator, audio: np.ndarray, as_stem: int) -> np.ndarray:
        """audio augmented as stem `as_stem` would be (EQ, saturation, reverb, gain, swap)."""
        stems = np.zeros((len(STEMS), *audio.shape), dtype=np.float32)
        stems[as_stem] = audio
        augment_stems(stems, maker.augment, rng)
        return stems[as_stem]


def _at_level(part: np.ndarray, reference: np.ndarray, rng: np.random.Generator, db: tuple[float, float]) -> np.ndarray:
    """part scaled so its RMS is U(db) dB relative to reference's (unchanged where either is silent)."""
    ours, theirs = float(np.sqrt(np.mean(part**2))), float(np.sqrt(np.mean(reference**2)))
    if ours < 1e-6 or theirs < 1e-6:
        return part
    return (part * np.float32(theirs / ours * 10 ** (rng.uniform(*db) / 20))).astype(np.float32)


def usable(entry: dict[str, Any]) -> bool:
    """Whether a prepared recording (a sources.json entry) is used for training."""
    if entry["role"] == "band":
        alignment = entry.get("alignment")
        return alignment is not None and abs(alignment["guitar_late_ms"]) <= ALIGNED_MS
    return entry["rms_db"].get("all", 0.0) >= SILENT_DB


def onsets(audio: np.ndarray) -> np.ndarray:
    """Onset strength per 10 ms frame of (n, 2) audio: the rise of its log energy (n_frames,)."""
    mono = audio.mean(axis=1)
    frames = mono[: len(mono) // ONSET_HOP * ONSET_HOP].reshape(-1, ONSET_HOP)
    energy = np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-9)
    return np.maximum(np.diff(energy, prepend=energy[:1]), 0.0)


def alignment_ms(a: np.ndarray, b: np.ndarray, search_ms: float = 500.0) -> tuple[float, float]:
    """How far b's onsets are late against a's (ms, ±search_ms, to 10 ms) and how clearly
    (correlation at that lag over the median of the others): two tracks of one band played
    together have their onsets (drum hits, picked notes) at the same times."""
    x, y = onsets(a), onsets(b)
    n = min(len(x), len(y))
    x, y = x[:n] - x[:n].mean(), y[:n] - y[:n].mean()
    reach = int(search_ms / 10)
    scores = np.array([np.dot(x[max(0, -k): n - max(0, k)], y[max(0, k): n - max(0, -k)])
                       for k in range(-reach, reach + 1)])
    best = int(np.argmax(scores))
    others = np.delete(np.abs(scores), best)
    return (best - reach) * 10.0, float(scores[best] / (np.median(others) + 1e-12))


def provenance(folder: Path, share: float) -> dict[str, Any]:
    """What a model's card says of the prepared recordings it was trained on: the share of
    examples made from them, hours per role, and each package with its licence."""
    index = json.loads((Path(folder) / INDEX_FILE).read_text())
    packages = {entry["package"]: entry["licence"] for entry in index["sources"]}
    return {"share": share, "hours": {role: round(s / 3600, 2) for role, s in index["seconds"].items()},
            "packages": dict(sorted(packages.items()))}


def check(folder: Path) -> dict[str, Any]:
    """Listen-like checks of a prepared folder, before training on it: each role's levels
    (RMS dBFS of every recording), the bands' guitar-to-rest level and alignment (alignment_ms),
    recordings that are nearly silent (left out) or clipped (over 0.1 % of samples at full scale)."""
    index = json.loads((Path(folder) / INDEX_FILE).read_text())
    report: dict[str, Any] = {"levels_db": {}, "bands": [], "suspect": []}
    for role in ROLES:
        levels = [e["rms_db"].get("all", e["rms_db"].get("guitar")) for e in index["sources"] if e["role"] == role]
        if levels:
            report["levels_db"][role] = {"n": len(levels), "min": min(levels), "median": float(np.median(levels)),
                                         "max": max(levels)}
    for entry in index["sources"]:
        path = Path(folder) / entry["file"]
        if entry["role"] == "band":
            guitar, _ = sf.read(str(path / "guitar.wav"), dtype="float32", always_2d=True)
            rest, _ = sf.read(str(path / "rest.wav"), dtype="float32", always_2d=True)
            lag, clarity = alignment_ms(rest, guitar)
            report["bands"].append({"file": entry["file"], "guitar_over_rest_db": round(
                entry["rms_db"]["guitar"] - entry["rms_db"]["rest"], 1), "guitar_late_ms": lag,
                "clarity": round(clarity, 1), "used": abs(lag) <= ALIGNED_MS})
        else:
            audio, _ = sf.read(str(path), dtype="float32", always_2d=True)
            clipped = float(np.mean(np.abs(audio) >= 0.999)) if audio.size else 0.0
            if entry["rms_db"]["all"] < SILENT_DB or clipped > 0.001:
                report["suspect"].append({"file": entry["file"], "rms_db": entry["rms_db"]["all"],
                                          "clipped_share": round(clipped, 5), "used": usable(entry)})
    return report


def check_examples(folder: Path, store: Any, n: int = 40, seed: int = 0) -> dict[str, Any]:
    """Examples made as training makes them, `n` per role, from the prepared recordings and the
    multitrack songs of `store` (a StemStore): each part's level (RMS dBFS: 10th, 50th and 90th
    percentile), the level of each role's real part against the rest of its example (dB), and
    the largest gap between the example's mixture magnitude and that of the sum of its parts
    (0 when the mixture is the sum of its parts)."""
    from tuiplayer.data.examples import DEFAULT_EXAMPLES, ExampleMaker

    report: dict[str, Any] = {}
    for role in ROLES:
        only = RealMix(**{r: float(r == role) for r in ROLES})
        try:
            sources = RealSources(folder, only)
        except BadInput:
            continue
        maker = ExampleMaker(store, DEFAULT_AUGMENT, DEFAULT_EXAMPLES, real=sources, real_share=1.0)
        levels, relative, gaps = [], [], []
        cfg = DEFAULT_EXAMPLES.signal
        mixture = np.empty((cfg.n_frames, cfg.n_bins, 2), np.float32)
        targets = np.empty((cfg.n_frames, cfg.n_bins, 2, len(STEMS)), np.float32)
        for index in range(n):
            parts, _ = sources.excerpt(maker, np.random.default_rng((seed, index)))
            levels.append([_rms_db(part) for part in parts])
            real_part = {"instrumental": parts[1], "band": parts[0], "guitar": parts[STEMS.index("other")],
                         "drums": parts[STEMS.index("drums")]}[role]
            rest = parts.sum(axis=0) - real_part
            relative.append(_rms_db(real_part) - _rms_db(rest))
            maker.spectrograms(parts, mixture, targets)
            frames = slice(maker.config.lead_frames, maker.config.lead_frames + cfg.n_frames)
            whole = np.abs(maker.stft.forward(parts.sum(axis=0))[frames, : cfg.n_bins])
            gaps.append(float(np.abs(mixture - whole).max()))
        table = np.array(levels)
        report[role] = {
            "parts_rms_db": {f"part {k}": [round(float(np.percentile(table[:, k], q)), 1) for q in (10, 50, 90)]
                             for k in range(table.shape[1]) if np.median(table[:, k]) > -150},
            "real_over_rest_db": [round(float(np.percentile(relative, q)), 1) for q in (10, 50, 90)],
            "mixture_minus_sum_max": max(gaps),
        }
    return report
