"""Spleeter's U-Nets (Deezer, MIT licence) rebuilt in pure Keras 3, to carry its published
weights (`tuiplayer models import spleeter`, see tuiplayer.nn.spleeter for the conversion).

Spleeter's models see the same STFT as ours (Hann 4096, hop 1024, bins 0–1023, raw stereo
magnitudes laid out (frames, bins, channels)), so its layers fit our blocks unchanged:

    mixture magnitude x (batch, T, 1024, 2), T divisible by 64
      → one U-Net per Spleeter instrument i:
          encoder 6 × [Conv 5×5 stride 2 → BN → conv activation]  (16 … 512 filters)
          decoder 5 × [ConvT 5×5 stride 2 → deconv activation → BN (→ Dropout, 3 deepest)
                       → concat the encoder conv's output *before* its BN]
          ConvT 5×5 stride 2 to 1 channel → deconv activation → BN → Conv 4×4 dilation 2 (2 ch)
        = logits z_i (batch, T, 1024, 2)
      → SpleeterMasks: r_i = sigmoid(z_i) (or a softmax over the instruments), y_i = r_i · x,
        Spleeter's ratio masks m_i = (y_i² + ε/n) / (Σ_k y_k² + ε), ε = 1e-10,
        then summed into this project's four stems by a 0/1 matrix (2-stem "accompaniment" →
        other; 5-stem "piano" → other)
      → masks (batch, T, 1024, 2, 4), summing to 1 over the stems.

Layer names are `{instrument}_{conv|deconv|bn}{k}` and `{instrument}_logits`, so that the
importer can put each checkpoint variable into its layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.nn.models.layers import PACKAGE

FILTERS = (16, 32, 64, 128, 256, 512)
"""Spleeter's encoder widths (`conv_n_filters`) in its published 2-, 4- and 5-stem models (the
importer reads them from the checkpoint)."""

ACTIVATIONS = ("leaky_relu", "relu", "elu")
"""What Spleeter's `conv_activation` / `deconv_activation` may be (LeakyReLU's slope is 0.2)."""

EPSILON = 1e-10
"""Spleeter's EPSILON in its masks."""

SEPARATION_EXPONENT = 2
"""Spleeter's `separation_exponent`: masks are ratios of squared estimated magnitudes."""


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpleeterMasks(keras.layers.Layer):
    """Spleeter's ratio masks from its U-Nets' logits, gathered into this project's stems.

    Inputs: [logits (batch, T, F, channels, n_instruments), mixture magnitude (batch, T, F,
    channels)] → masks (batch, T, F, channels, n_stems).

    softmax: the instruments' mask estimates are a softmax over the instruments (Spleeter's
    `softmax_unet`, its 5-stem model) instead of a sigmoid each. groups[j]: the instruments
    whose masks sum into stem j (an empty group gives a zero mask: a stem this model does not
    separate, e.g. drums in a 2-stem model, which sits in "other").
    """

    def __init__(self, groups: Sequence[Sequence[int]], softmax: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(softmax, bool):
            raise ValueError(f"`softmax` must be a bool. Received: softmax={softmax!r}")
        groups = [list(group) for group in groups]
        members = [i for group in groups for i in group]
        if sorted(members) != list(range(len(members))) or not members:
            raise ValueError(f"`groups` must place each instrument 0…n-1 in exactly one stem. "
                             f"Received: groups={groups}")
        self.groups = groups
        self.softmax = softmax
        self.n_instruments = len(members)
        # (n_instruments, n_stems): 1 where instrument i goes into stem j
        self._matrix = [[1.0 if i in group else 0.0 for group in groups] for i in range(self.n_instruments)]

    def call(self, inputs: Sequence[Any]) -> Any:
        logits, magnitude = inputs
        estimates = ops.softmax(logits, axis=-1) if self.softmax else ops.sigmoid(logits)
        power = (estimates * magnitude[..., None]) ** SEPARATION_EXPONENT
        masks = (power + EPSILON / self.n_instruments) / (ops.sum(power, axis=-1, keepdims=True) + EPSILON)
        return ops.matmul(masks, ops.convert_to_tensor(self._matrix, dtype=masks.dtype))

    def compute_output_shape(self, input_shape: Sequence[Sequence[int | None]]) -> tuple[int | None, ...]:
        return (*tuple(input_shape[0])[:-1], len(self.groups))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "groups": self.groups, "softmax": self.softmax}


def _activation(kind: str, name: str) -> keras.layers.Layer:
    if kind == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.2, name=name)
    if kind == "elu":
        return keras.layers.ELU(name=name)
    if kind == "relu":
        return keras.layers.ReLU(name=name)
    raise ValueError(f"unknown activation {kind!r}; one of {', '.join(ACTIVATIONS)}")


def spleeter_unet(x: Any, name: str, conv_activation: str, deconv_activation: str,
                  filters: Sequence[int] = FILTERS) -> Any:
    """One instrument's U-Net: magnitude (batch, T, F, 2) → logits (batch, T, F, 2), as Spleeter's
    `apply_unet` with `output_mask_logit` (the sigmoid or softmax comes in SpleeterMasks)."""
    conv = {"strides": 2, "padding": "same"}
    skips = []
    h = x
    for k, width in enumerate(filters):
        c = keras.layers.Conv2D(width, 5, **conv, name=f"{name}_conv{k}")(h)
        skips.append(c)
        h = _activation(conv_activation, f"{name}_act{k}")(keras.layers.BatchNormalization(name=f"{name}_bn{k}")(c))
    # the decoder starts from the deepest conv's output (before its BN), as Spleeter's does
    h = skips[-1]
    widths = (*reversed(filters[:-1]), 1)  # 256, 128, 64, 32, 16, then 1
    for k, width in enumerate(widths):
        h = keras.layers.Conv2DTranspose(width, 5, **conv, name=f"{name}_deconv{k}")(h)
        h = _activation(deconv_activation, f"{name}_deact{k}")(h)
        h = keras.layers.BatchNormalization(name=f"{name}_bn{6 + k}")(h)
        if k < 3:
            h = keras.layers.Dropout(0.5, name=f"{name}_drop{k}")(h)
        if k < 5:
            h = keras.layers.Concatenate(name=f"{name}_cat{k}")([skips[4 - k], h])
    return keras.layers.Conv2D(2, 4, dilation_rate=2, padding="same", name=f"{name}_logits")(h)


def stem_groups(instruments: Sequence[str]) -> list[list[int]]:
    """Which Spleeter instruments make each of STEMS: its own name, and everything else
    (accompaniment, piano, …) into "other". → groups[j] = instrument indices of stem j."""
    groups: list[list[int]] = [[] for _ in STEMS]
    for i, instrument in enumerate(instruments):
        groups[STEMS.index(instrument) if instrument in STEMS else STEMS.index("other")].append(i)
    return groups


def build_spleeter(
    instruments: Sequence[str],
    *,
    conv_activation: str = "leaky_relu",
    deconv_activation: str = "relu",
    softmax: bool = False,
    filters: Sequence[int] = FILTERS,
    frames: int = SIGNAL.n_frames,
) -> keras.Model:
    """Spleeter's model for `instruments` (its names, in its order) as a Keras model:
    magnitudes (batch, frames, n_bins, channels) → masks (batch, frames, n_bins, channels, 4).
    filters: the encoder's 6 widths. Untrained: the importer fills in the weights."""
    if len(filters) != len(FILTERS):
        raise ValueError(f"Spleeter's U-Net has {len(FILTERS)} encoder widths. Received: filters={filters}")
    if frames % 64:
        raise ValueError(f"Spleeter's U-Net needs a multiple of 64 frames. Received: frames={frames}")
    for kind in (conv_activation, deconv_activation):
        if kind not in ACTIVATIONS:
            raise ValueError(f"unknown activation {kind!r}; one of {', '.join(ACTIVATIONS)}")
    magnitude = keras.Input((frames, SIGNAL.n_bins, SIGNAL.channels), name="magnitude")
    logits = [spleeter_unet(magnitude, instrument, conv_activation, deconv_activation, filters)
              for instrument in instruments]
    stacked = keras.layers.Concatenate(axis=-1, name="instruments")(
        [keras.layers.Reshape((frames, SIGNAL.n_bins, SIGNAL.channels, 1), name=f"{i}_stack")(z)
         for i, z in zip(instruments, logits, strict=True)])
    masks = SpleeterMasks(stem_groups(instruments), softmax=softmax, name="masks")([stacked, magnitude])
    return keras.Model(magnitude, masks, name="spleeter")
