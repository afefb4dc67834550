"""The separation networks (pure Keras 3): magnitude in, four stem masks out.

Contract of every architecture:
    input   mixture magnitude, (batch, n_frames=192, n_bins=1024, channels=2) float32, raw |STFT|
            (the model normalises it itself);
    output  masks, (batch, 192, 1024, 2, 4) float32, stems last in STEMS order (vocals, drums,
            bass, other); non-negative and summing to 1 over the stem axis in every bin, so the
            four stems add back up to the mixture (DESIGN.md §3, unity remix).

    build_model("unet" | "hybrid" | "d3net", **options) -> keras.Model

Each builder's keyword options set its size; the defaults are the shipping sizes. Losses for
training are in `tuiplayer.nn.models.losses`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import keras

from tuiplayer.errors import ModelError
from tuiplayer.nn.models.d3net import build_d3net
from tuiplayer.nn.models.hybrid import build_hybrid
from tuiplayer.nn.models.spleeter import SpleeterMasks  # noqa: F401 - registers it with Keras
from tuiplayer.nn.models.unet import build_unet

BUILDERS: Mapping[str, Callable[..., keras.Model]] = {
    "unet": build_unet,
    "hybrid": build_hybrid,
    "d3net": build_d3net,
}
"""Architecture name → builder taking keyword options only."""

ARCHITECTURES: tuple[str, ...] = tuple(BUILDERS)

TINY_OPTIONS: Mapping[str, Mapping[str, Any]] = {
    "unet": {"base_filters": 4, "depth": 3, "max_filters": 8, "convs_per_level": 0},
    "hybrid": {
        "d_model": 16,
        "num_heads": 2,
        "trunk_layers": 1,
        "branch_layers": 1,
        "ffn_multiplier": 1,
        "bass_d_model": 8,
        "bass_heads": 2,
        "bass_layers": 1,
        "unet_base_filters": 2,
        "unet_depth": 2,
        "unet_max_filters": 4,
        "other_base_filters": 2,
        "other_depth": 2,
        "other_max_filters": 4,
    },
    "d3net": {"stem_filters": 4, "growth": 2, "d2_layers": 2, "d3_blocks": 2, "levels": 1},
}
"""Options of a tiny (untrained, fast) version of each architecture, for tests of the whole path."""


def build_model(arch: str, **options: Any) -> keras.Model:
    """A new, untrained separator of architecture `arch` with the given size options.

    Raises ModelError for an unknown architecture, an unknown option or a bad option value.
    """
    try:
        builder = BUILDERS[arch]
    except KeyError:
        raise ModelError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}") from None
    known = set(_keyword_names(builder))
    unknown = sorted(set(options) - known)
    if unknown:
        raise ModelError(
            f"architecture {arch!r} has no option {', '.join(unknown)}; its options: {', '.join(sorted(known))}"
        )
    return builder(**options)


def _keyword_names(builder: Callable[..., keras.Model]) -> tuple[str, ...]:
    return tuple(
        name
        for name, parameter in inspect.signature(builder).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    )


__all__ = ["ARCHITECTURES", "BUILDERS", "TINY_OPTIONS", "build_model"]
