"""The demo song shipped in the package: one 30-second synthetic song with its stems, as FLAC.

    python -m tuiplayer.synth.demo [--seed N] [--out DIR] [--force]

writes tuiplayer/assets/demo/{mixture,vocals,drums,bass,other}.flac and song.json. FLAC is
16-bit here (small files), so the stored mixture is the sum of the stems only to within the
16-bit rounding. `DEMO_SEED` was chosen by `pick_demo_seed` (an ending, sung English vocals
over about half the song, several sections, a moderate tempo) and then checked by its numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from tuiplayer.assets import DEMO_DIR
from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.errors import TuiplayerError
from tuiplayer.files import atomic_write, write_text
from tuiplayer.synth.compose import compose
from tuiplayer.synth.generate import _kits, mixture_of, render_to_folder
from tuiplayer.synth.resources import Resources, find_resources
from tuiplayer.synth.score import Song

DEMO_SEED = 1254
"""Seed of the bundled demo song (song index 0 of that seed)."""

DEMO_RECIPE = 1
"""The production recipe (generate.RECIPES) the bundled demo was rendered with."""

DEMO_SECONDS = 30.0

FLAC_SUBTYPE = "PCM_16"


def demo_score(song: Song) -> float:
    """How well a composed song suits the demo (higher is better; 0 = unsuitable)."""
    if song.vocals.singer.style != "sung" or song.vocals.singer.language != "en" or not song.info.get("ending"):
        return 0.0
    if not 80 <= song.tempo_bpm <= 165:
        return 0.0
    sung = sum(s.end_s - s.start_s for s in song.sections if "vocals" in s.stems)
    share = sung / song.seconds
    if not 0.4 <= share <= 0.8 or len(song.sections) < 3:
        return 0.0
    if any(stem not in s.stems for s in song.sections if s.name in ("verse", "chorus") for stem in STEMS):
        return 0.0
    names = [s.name for s in song.sections]
    if not {"verse", "chorus"} <= set(names):
        return 0.0
    instrumental = any("vocals" not in s.stems for s in song.sections[1:-1])
    return (1.0 - abs(share - 0.6) + 0.1 * len(song.vocals.harmonies) / max(1, len(song.vocals.lead))
            + 0.2 * (names[0] == "intro") + 0.2 * instrumental + 0.1 * (song.drums[0].source == "hydrogen")
            + 0.1 * ("comp" in str(song.info.get("roles"))) + 0.1 * (song.genre in ("pop", "rock", "funk")))


def pick_demo_seed(resources: Resources, candidates: range = range(1, 2000)) -> int:
    """The first seed among `candidates` whose song 0 scores best (composition only, no audio)."""
    fonts = tuple(str(p) for p in resources.soundfonts)
    kits = _kits(resources.drumkits_dir)
    best, best_score = candidates[0], 0.0
    for seed in candidates:
        score = demo_score(compose(seed, 0, DEMO_SECONDS, fonts, kits))
        if score > best_score:
            best, best_score = seed, score
    return best


def make_demo(out_dir: Path = DEMO_DIR, seed: int = DEMO_SEED, force: bool = False) -> Path:
    """Render the demo song and write it as FLAC stems + mixture + song.json into `out_dir`."""
    import tempfile

    resources = find_resources()
    song = compose(seed, 0, DEMO_SECONDS, tuple(str(p) for p in resources.soundfonts), _kits(resources.drumkits_dir))
    out_dir = Path(out_dir)
    if not force:
        for name in [*STEMS, "mixture"]:
            if (out_dir / f"{name}.flac").exists():
                from tuiplayer.errors import OutputExistsError

                raise OutputExistsError(f"{out_dir / name}.flac: exists already (use --force to overwrite)")
    with tempfile.TemporaryDirectory(prefix="tuiplayer-demo-") as tmp:
        folder = render_to_folder(song, resources, Path(tmp), force=True, recipe=DEMO_RECIPE)
        stems = {s: sf.read(folder / f"{s}.wav", dtype="float32")[0] for s in STEMS}
        document = json.loads((folder / "song.json").read_text())
    stems["mixture"] = mixture_of(stems)
    for name, samples in stems.items():
        clipped = np.clip(samples, -1.0, 1.0)
        atomic_write(
            out_dir / f"{name}.flac",
            lambda handle, x=clipped: sf.write(handle, x, SIGNAL.sample_rate, format="FLAC", subtype=FLAC_SUBTYPE),
            force=force,
        )
    document["demo"] = {"format": f"FLAC {FLAC_SUBTYPE}", "note": "mixture = sum of stems up to 16-bit rounding"}
    write_text(out_dir / "song.json", json.dumps(document, indent=1) + "\n", force=force)
    for name in [*stems, "song"]:  # package data must be readable by everyone
        path = out_dir / (f"{name}.flac" if name != "song" else "song.json")
        path.chmod(0o644)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuiplayer.synth.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEMO_SEED)
    parser.add_argument("--out", type=Path, default=DEMO_DIR)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--pick", action="store_true", help="print the best demo seed and exit")
    args = parser.parse_args(argv)
    try:
        if args.pick:
            print(pick_demo_seed(find_resources()))
            return 0
        print(make_demo(args.out, args.seed, args.force))
    except TuiplayerError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
