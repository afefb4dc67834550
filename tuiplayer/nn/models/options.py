"""Checks of architecture options, shared by the builders (bad options raise `ModelError`)."""

from __future__ import annotations

from collections.abc import Mapping

from tuiplayer.errors import ModelError


def check_options(
    *,
    ints: Mapping[str, object] | None = None,
    counts: Mapping[str, object] | None = None,
    fractions: Mapping[str, object] | None = None,
    positive: Mapping[str, object] | None = None,
) -> None:
    """Raise ModelError unless every option is valid.

    ints: each an int ≥ 1; counts: each an int ≥ 0; fractions: each a number in [0, 1);
    positive: each a number > 0.
    """
    for name, value in (ints or {}).items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelError(f"option {name} must be a whole number ≥ 1. Received: {name}={value!r}")
    for name, value in (counts or {}).items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ModelError(f"option {name} must be a whole number ≥ 0. Received: {name}={value!r}")
    for name, value in (fractions or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ModelError(f"option {name} must be a number in [0, 1). Received: {name}={value!r}")
    for name, value in (positive or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ModelError(f"option {name} must be a number > 0. Received: {name}={value!r}")


def check_divisible(name: str, value: int, divisor: int, what: str) -> None:
    """Raise ModelError unless `value` is a multiple of `divisor`."""
    if value % divisor:
        raise ModelError(f"option {name} must be divisible by {what} ({divisor}). Received: {name}={value!r}")


def check_geometry(n_frames: int, n_bins: int, channels: int, multiple: int) -> None:
    """Input geometry: positive ints, frames and bins multiples of `multiple` (2**levels)."""
    check_options(ints={"n_frames": n_frames, "n_bins": n_bins, "channels": channels})
    check_divisible("n_frames", n_frames, multiple, "2**depth")
    check_divisible("n_bins", n_bins, multiple, "2**depth")
