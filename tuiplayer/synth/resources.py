"""The outside things the generator needs, found and checked before any work starts.

SoundFonts (Debian `fluid-soundfont-gm`, `timgm6mb-soundfont`), the FluidSynth library
(`fluidsynth`/`libfluidsynth3`), espeak-ng (`espeak-ng`) and the Hydrogen drum kits
(`hydrogen-drumkits`). Whatever is missing is reported as one `BadInput` line that names the
Debian package to install.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tuiplayer.errors import BadInput

DEFAULT_SOUNDFONTS: tuple[tuple[Path, str], ...] = (
    (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), "fluid-soundfont-gm"),
    (Path("/usr/share/sounds/sf2/TimGM6mb.sf2"), "timgm6mb-soundfont"),
)
"""The General MIDI soundfonts used by default, with the Debian package providing each."""

DEFAULT_DRUMKITS_DIR = Path("/usr/share/hydrogen/data/drumkits")


@dataclass(frozen=True)
class Resources:
    """Checked paths: soundfonts (.sf2), the espeak-ng program, the Hydrogen drum-kit folder."""

    soundfonts: tuple[Path, ...]
    espeak: str
    drumkits_dir: Path


def _check_soundfont(path: Path, package: str | None) -> Path:
    hint = f" (install the Debian package {package})" if package else ""
    if not path.is_file():
        raise BadInput(f"{path}: soundfont not found{hint}")
    with path.open("rb") as f:
        head = f.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise BadInput(f"{path}: not a SoundFont 2 (.sf2) file")
    return path


def find_resources(soundfonts: Sequence[Path] | None = None, drumkits_dir: Path = DEFAULT_DRUMKITS_DIR) -> Resources:
    """Locate and check everything; raises BadInput naming what to install."""
    if soundfonts:
        fonts = tuple(_check_soundfont(Path(p), None) for p in soundfonts)
    else:
        fonts = tuple(_check_soundfont(p, pkg) for p, pkg in DEFAULT_SOUNDFONTS)
    from tuiplayer.synth.fluid import load_library  # ctypes only; raises BadInput when missing

    load_library()
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise BadInput("espeak-ng not found: install the Debian package espeak-ng")
    if not drumkits_dir.is_dir() or not any(drumkits_dir.glob("*/drumkit.xml")):
        raise BadInput(f"{drumkits_dir}: no Hydrogen drum kits found (install the Debian package hydrogen-drumkits)")
    return Resources(fonts, espeak, drumkits_dir)
