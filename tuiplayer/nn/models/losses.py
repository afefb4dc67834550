"""Training losses for the separators (pure Keras 3, any backend).

The separators output masks; the loss compares the masked mixture with what is known of the
true stems, in magnitude (Spleeter's objective). Where every stem is known:

    L = mean over (frames, bins, channels, stems) of  w_stem · | mask · |X| − |S_stem| |

with |X| the mixture magnitude and |S_stem| the true stem magnitudes (both the model's n_bins).
Real recordings come with partial labels (issue 17): a real instrumental under a generated
voice knows the vocals and only the *sum* of drums, bass and other; a real guitar track inside
a whole song says only that "other" holds at least that guitar. So each example carries
`labels`: S slots, each the sum of some stems and whether its target is exact or a lower
bound (`GroupedL1`; the tables: `tuiplayer.data.labels`); FULL_LABELS gives the formula above.

Shapes (time-first, stems last in STEMS order):
    masks, estimates   (batch, n_frames, n_bins, channels, n_stems)
    targets            (batch, n_frames, n_bins, channels, n_slots)   n_slots = n_stems
    labels             (batch, n_slots, n_stems + 1)   membership per slot, then "lower bound"
    mixture_magnitude  (batch, n_frames, n_bins, channels)

`with_group_loss(separator)` is the trainer (its output is each example's loss);
`masked_magnitude_l1` is the full-label formula on its own (a reference for tests).
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
class GroupedL1(keras.layers.Layer):
    """The training loss of each example, from what its labels say is known.

    Inputs: [estimates (B, T, F, C, S) = masks × |mixture|, targets (B, T, F, C, K) magnitudes,
    labels (B, K, S + 1)] with K = S slots. Row k of labels: membership m_k (S,) of slot k's
    stems, then 1 if the target is only a lower bound. For slot k, with e_k = Σ_s m_ks·estimate_s
    and t_k its target (both (T, F, C)):

        exact:        loss_k = mean_TFC |e_k − t_k|
        lower bound:  loss_k = mean_TFC max(0, t_k − e_k)     (the stems hold at least t_k)

    weighted by w_k = Σ_s m_ks·w_s / Σ_s m_ks (the stems' weights, all 1 by default), and
    summed over slots / S. Output (B,). With FULL_LABELS (slot k = stem k, exact) this is
    `masked_magnitude_l1` per example: the mean over stems of w_s·|estimate_s − stem_s|.
    """

    def __init__(self, stem_weights: Sequence[float] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stem_weights = _stem_weights(stem_weights)

    def call(self, inputs: Sequence[Any]) -> Any:
        estimates, targets, table = (ops.cast(x, "float32") for x in inputs)
        n_stems = ops.shape(estimates)[-1]
        membership, bound = table[:, :, :-1], table[:, :, -1]  # (B, K, S), (B, K)
        grouped = ops.einsum("btfcs,bks->btfck", estimates, membership)
        difference = grouped - targets
        is_bound = ops.reshape(bound, (-1, 1, 1, 1, ops.shape(bound)[-1])) > 0.5
        error = ops.where(is_bound, ops.relu(-difference), ops.abs(difference))
        per_slot = ops.mean(error, axis=(1, 2, 3))  # (B, K)
        weighted = membership if self.stem_weights is None else (
            membership * ops.convert_to_tensor(self.stem_weights, dtype="float32"))
        weight = ops.sum(weighted, -1) / ops.maximum(ops.sum(membership, -1), 1.0)
        return ops.sum(per_slot * weight, -1) / ops.cast(n_stems, "float32")

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        return (input_shape[0][0],)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"stem_weights": None if self.stem_weights is None else list(self.stem_weights)})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class TrainerLoss(keras.losses.Loss):
    """The trainer's output is already each example's loss (`with_group_loss`): its mean."""

    def __init__(self, name: str = "grouped_l1", reduction: str = "sum_over_batch_size", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return ops.cast(y_pred, "float32")


def with_group_loss(separator: keras.Model, stem_weights: Sequence[float] | None = None) -> keras.Model:
    """The trainer: [mixture (B, T, F, C), targets (B, T, F, C, S), labels (B, S, S + 1)] →
    each example's GroupedL1 loss (B,). It shares the separator's weights: train the trainer
    (`compile(loss=TrainerLoss())`, `fit(x=(mixture, targets, labels), y=zeros(B))`), save the
    separator."""
    n_stems = len(STEMS)
    mixture = keras.Input(separator.input_shape[1:], name="mixture_magnitude")
    targets = keras.Input((*separator.input_shape[1:], n_stems), name="targets")
    table = keras.Input((n_stems, n_stems + 1), name="labels")
    estimates = ApplyMasks(dtype="float32", name="stem_estimates")([separator(mixture), mixture])
    loss = GroupedL1(stem_weights, dtype="float32", name="grouped_l1")([estimates, targets, table])
    return keras.Model([mixture, targets, table], loss, name=f"{separator.name}_trainer")
