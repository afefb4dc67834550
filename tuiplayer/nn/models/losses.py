"""Training losses for the separators (pure Keras 3, any backend).

The separators output masks; the loss compares the masked mixture with the true stems, in
magnitude (Spleeter's objective):

    L = mean over (frames, bins, channels, stems) of  w_stem · | mask · |X| − |S_stem| |

with |X| the mixture magnitude and |S_stem| the true stem magnitudes (both the model's n_bins),
averaged over the batch. Shapes (time-first, stems last in STEMS order):
    stems_magnitude    (batch, n_frames, n_bins, channels, n_stems)
    masks              (batch, n_frames, n_bins, channels, n_stems)
    mixture_magnitude  (batch, n_frames, n_bins, channels)

Two ways to use it:
  * a custom train step: `masked_magnitude_l1(stems_magnitude, masks, mixture_magnitude)`;
  * `model.compile(loss=StemMagnitudeL1())` on `with_stem_estimates(separator)`, a model that
    outputs masks × mixture, then `fit(x=mixture_magnitude, y=stems_magnitude)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from tuiplayer.config import STEMS
from tuiplayer.nn.models.layers import PACKAGE, ApplyMasks


def _stem_weights(stem_weights: Sequence[float] | None) -> tuple[float, ...] | None:
    if stem_weights is None:
        return None
    weights = tuple(stem_weights)
    if len(weights) != len(STEMS) or not all(
        isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in weights
    ):
        raise ValueError(
            f"`stem_weights` must be {len(STEMS)} non-negative numbers in STEMS order {STEMS}. "
            f"Received: stem_weights={stem_weights!r}"
        )
    return tuple(float(w) for w in weights)


def _weighted_mean_abs(difference: Any, stem_weights: tuple[float, ...] | None) -> Any:
    """|difference| (batch, …, n_stems) → per-example loss (batch,)."""
    error = ops.abs(difference)
    if stem_weights is not None:
        # mean over stems of w·error equals the plain mean when every weight is 1
        error = error * ops.convert_to_tensor(stem_weights, dtype=error.dtype)
    return ops.mean(ops.reshape(error, (ops.shape(error)[0], -1)), axis=-1)


def masked_magnitude_l1(
    stems_magnitude: Any,
    masks: Any,
    mixture_magnitude: Any,
    stem_weights: Sequence[float] | None = None,
) -> Any:
    """Scalar L1 loss between masks × mixture magnitude and the true stem magnitudes.

    stems_magnitude, masks: (batch, n_frames, n_bins, channels, n_stems);
    mixture_magnitude: (batch, n_frames, n_bins, channels). stem_weights: one weight per stem
    (STEMS order), default all 1. Computed in float32.
    """
    weights = _stem_weights(stem_weights)
    masks = ops.cast(masks, "float32")
    estimates = masks * ops.expand_dims(ops.cast(mixture_magnitude, "float32"), -1)
    difference = estimates - ops.cast(stems_magnitude, "float32")
    return ops.mean(_weighted_mean_abs(difference, weights))


@keras.saving.register_keras_serializable(package=PACKAGE)
class StemMagnitudeL1(keras.losses.Loss):
    """L1 between estimated and true stem magnitudes, for `compile()` on `with_stem_estimates`.

    y_true: true stem magnitudes (batch, n_frames, n_bins, channels, n_stems);
    y_pred: estimates masks × mixture magnitude, the same shape. Per example the mean of
    w_stem · |y_pred − y_true| (stem_weights in STEMS order, default all 1), then `reduction`.
    """

    def __init__(
        self,
        stem_weights: Sequence[float] | None = None,
        name: str = "stem_magnitude_l1",
        reduction: str = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.stem_weights = _stem_weights(stem_weights)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        return _weighted_mean_abs(y_pred - y_true, self.stem_weights)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"stem_weights": None if self.stem_weights is None else list(self.stem_weights)})
        return config


def with_stem_estimates(separator: keras.Model) -> keras.Model:
    """Wrap a separator so it outputs stem magnitude estimates: masks × mixture magnitude.

    (batch, n_frames, n_bins, channels) → (batch, n_frames, n_bins, channels, n_stems). The
    wrapper shares the separator's weights: train the wrapper, save the separator.
    """
    mixture = keras.Input(separator.input_shape[1:], name="mixture_magnitude")
    masks = separator(mixture)
    estimates = ApplyMasks(dtype="float32", name="stem_estimates")([masks, mixture])
    return keras.Model(mixture, estimates, name=f"{separator.name}_estimates")
