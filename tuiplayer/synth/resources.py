"""The outside things the generator needs, found and checked before any work starts.

SoundFonts (Debian `fluid-soundfont-gm`, `timgm6mb-soundfont`), the FluidSynth library
(`fluidsynth`/`libfluidsynth3`), espeak-ng (`espeak-ng`), the Hydrogen drum kits
(`hydrogen-drumkits`) and, for recipe 3, the AVL drum kits (`avldrums.lv2-soundfont`: two
recorded acoustic kits as SoundFonts). Whatever is missing is reported as one `BadInput` line
that names the Debian package to install.
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

AVL_KITS: tuple[tuple[Path, str], ...] = (
    (Path("/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2"), "avldrums.lv2-soundfont"),
    (Path("/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2"), "avldrums.lv2-soundfont"),
)
"""Recorded acoustic drum kits as SoundFonts (one preset each, bank 0 program 0, General MIDI
drum keys 36-61; CC-BY-SA-3.0), with their Debian package."""

DEFAULT_DRUMKITS_DIR = Path("/usr/share/hydrogen/data/drumkits")


@dataclass(frozen=True)
class Resources:
    """Checked paths: soundfonts (.sf2), the espeak-ng program, the Hydrogen drum-kit folder,
    the AVL drum-kit soundfonts (empty unless asked for)."""

    soundfonts: tuple[Path, ...]
    espeak: str
    drumkits_dir: Path
    drum_soundfonts: tuple[Path, ...] = ()


def _check_soundfont(path: Path, package: str | None) -> Path:
    hint = f" (install the Debian package {package})" if package else ""
    if not path.is_file():
        raise BadInput(f"{path}: soundfont not found{hint}")
    with path.open("rb") as f:
        head = f.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise BadInput(f"{path}: not a SoundFont 2 (.sf2) file")
    return path


def find_resources(soundfonts: Sequence[Path] | None = None, drumkits_dir: Path = DEFAULT_DRUMKITS_DIR,
                   avl_kits: bool = False) -> Resources:
    """Locate and check everything (the AVL kits when `avl_kits`); raises BadInput naming what
    to install."""
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
    try:
        drum_fonts = tuple(_check_soundfont(p, pkg) for p, pkg in AVL_KITS) if avl_kits else ()
    except BadInput as error:
        raise BadInput(f"{error}: recipe 3's recorded drum kits (--recipe 2 does without them)") from None
    return Resources(fonts, espeak, drumkits_dir, drum_fonts)
