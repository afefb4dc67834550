"""Files that ship inside the package: where they are (one home for their paths)."""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent / "demo"
"""The bundled demo song: mixture.flac, its four stems, and song.json (how it was made)."""

DEMO_SONG = DEMO_DIR / "mixture.flac"
