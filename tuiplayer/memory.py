"""Process-wide memory: keeping long-lived objects out of the garbage collector's walks."""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Take every object alive now out of the garbage collector's sight (gc.freeze), without
    a collection first (that would hold the GIL as long as the one it spares).

    Call it once what is loaded will live as long as the process: TensorFlow, a model and
    its first traced call leave ~300,000 objects, and each full collection then walked them
    all, holding the GIL ~190 ms every ~2.4 s while the player drew its screen (measured
    beside a training job). Frozen, full collections take 5-9 ms. The cost is that cycles
    already garbage at that moment are never freed: a few thousand objects, once per model."""
    gc.freeze()
