"""Process-wide memory settings."""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8  # glibc <malloc.h>
MALLOC_ARENAS = 2
"""glibc gives each busy thread its own malloc arena (up to 8 per core); TensorFlow's,
FFTW's and the player's threads each then keep their own high-water mark. Measured by
`tuiplayer bench` (a 10-minute song, hybrid + unet): 2,247 MB peak RSS by default, 1,756 MB
with 2 arenas, at the same speed."""


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (call before threads start); False where there is no glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False
