"""Process-wide memory settings."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

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


def freeze_long_lived() -> None:
    """Take every object alive now out of the garbage collector's sight (gc.freeze), without
    a collection first (that would hold the GIL as long as the one it spares).

    Call it once what is loaded will live as long as the process: TensorFlow, a model and
    its first traced call leave ~300,000 objects, and each full collection then walked them
    all, holding the GIL ~190 ms every ~2.4 s while the player drew its screen. The audio
    callback waited that long (a dropout) and so did a seek's model call. Frozen, full
    collections take 5-9 ms. The cost is that cycles already garbage at that moment are
    never freed: a few thousand objects, once per model."""
    gc.freeze()
