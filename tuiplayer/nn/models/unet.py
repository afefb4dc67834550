"""`unet` (v0.1): a 2-D U-Net over (time, frequency) with slimmed skip connections.

    mixture magnitude (batch, 192, 1024, 2)
      → MagnitudeNorm (log1p + learned per-bin scale/offset)
      → encoder: `depth` × [Conv k×k stride 2 → BN → LeakyReLU]        (halves frames and bins)
      → decoder: `depth` × [ConvT k×k stride 2 → BN → ReLU, concat 1×1-reduced skip]
      → concat the normalised input → Conv 1×1 → logits (batch, 192, 1024, channels·4)
      → StemSoftmax → masks (batch, 192, 1024, 2, 4), softmax over the stems (sum to 1).

The skips carry `skip_ratio` × the encoder's filters (a 1×1 convolution), which keeps the
decoder's convolutions cheap. The same body (`unet_body`) serves as the small U-Nets inside
`hybrid`.
"""

from __future__ import annotations

from typing import Any

import keras

from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.nn.models.layers import MagnitudeNorm, StemSoftmax, conv_bn_act, deconv_bn_act
from tuiplayer.nn.models.options import check_geometry, check_options


def unet_body(x: Any, *, out_channels: int, name: str, **options: Any) -> Any:
    """U-Net body: (batch, T, F, c_in) → logits (batch, T, F, out_channels), linear output.

    options: those of `unet_features`.
    """
    features = unet_features(x, name=name, **options)
    return keras.layers.Conv2D(out_channels, 1, name=f"{name}_logits")(features)


def unet_features(
    x: Any,
    *,
    base_filters: int,
    depth: int,
    max_filters: int,
    kernel_size: int,
    convs_per_level: int,
    skip_ratio: float,
    dropout: float,
    name: str,
) -> Any:
    """U-Net body up to its last features: (batch, T, F, c_in) → (batch, T, F, base_filters + c_in).

    T and F must be divisible by 2**depth. Encoder level i (0-based) has min(base_filters·2^i,
    max_filters) filters at resolution (T, F) / 2^(i+1): a strided k×k conv, then
    `convs_per_level` 3×3 convs. The decoder mirrors it: a strided k×k transposed conv, the
    concatenated 1×1-slimmed skip, `convs_per_level` 3×3 convs. Dropout acts on the 3 deepest
    decoder levels (as in Spleeter).
    """
    inputs = x
    skips = []
    filters = [min(base_filters * 2**level, max_filters) for level in range(depth)]
    for level, width in enumerate(filters):
        x = conv_bn_act(x, width, kernel_size, strides=2, activation="leaky_relu", name=f"{name}_enc{level}")
        for index in range(convs_per_level):
            x = conv_bn_act(x, width, 3, activation="leaky_relu", name=f"{name}_enc{level}_{index}")
        skips.append(x)
    for level in reversed(range(depth)):
        # x is at level `level`'s resolution; go up one: (b, T/2^level, F/2^level, width)
        width = filters[level - 1] if level > 0 else base_filters
        x = deconv_bn_act(x, width, kernel_size, activation="relu", name=f"{name}_dec{level}")
        if dropout and level >= depth - 3:
            x = keras.layers.Dropout(dropout, name=f"{name}_drop{level}")(x)
        if level == 0:
            break
        # the encoder's output at this resolution, slimmed by a 1×1 conv to skip_ratio·filters
        skip_width = max(1, round(filters[level - 1] * skip_ratio))
        skip = keras.layers.Conv2D(skip_width, 1, name=f"{name}_skip{level - 1}")(skips[level - 1])
        x = keras.layers.Concatenate(name=f"{name}_cat{level - 1}")([x, skip])
        for index in range(convs_per_level):
            x = conv_bn_act(x, width, 3, activation="relu", name=f"{name}_dec{level}_{index}")
    # full resolution again: (b, T, F, base_filters) + the body's input
    return keras.layers.Concatenate(name=f"{name}_cat_in")([x, inputs])


def build_unet(
    *,
    base_filters: int = 16,
    depth: int = 6,
    max_filters: int = 128,
    kernel_size: int = 5,
    convs_per_level: int = 1,
    skip_ratio: float = 0.5,
    dropout: float = 0.1,
    n_frames: int = SIGNAL.n_frames,
    n_bins: int = SIGNAL.n_bins,
    channels: int = SIGNAL.channels,
    name: str = "unet",
) -> keras.Model:
    """The `unet` separator: magnitude (b, n_frames, n_bins, channels) → masks (…, channels, 4).

    base_filters: filters of the first encoder level (doubling per level up to max_filters).
    depth: encoder levels, each halving frames and bins (n_frames, n_bins divisible by 2**depth).
    kernel_size: square kernel of the strided (de)convolutions.
    convs_per_level: extra 3×3 convolutions per encoder and per decoder level (0 = Spleeter-like).
    skip_ratio: skip connections carry this fraction of their level's filters (1×1 conv).
    dropout: rate on the three deepest decoder levels during training.
    Masks: softmax over the stems (non-negative, sum to 1).
    """
    check_options(
        ints={"base_filters": base_filters, "depth": depth, "max_filters": max_filters, "kernel_size": kernel_size},
        counts={"convs_per_level": convs_per_level},
        fractions={"dropout": dropout},
        positive={"skip_ratio": skip_ratio},
    )
    check_geometry(n_frames, n_bins, channels, 2**depth)
    n_stems = len(STEMS)
    mixture = keras.Input((n_frames, n_bins, channels), name="mixture_magnitude")
    x = MagnitudeNorm(name="input_norm")(mixture)
    logits = unet_body(
        x,
        out_channels=channels * n_stems,
        base_filters=base_filters,
        depth=depth,
        max_filters=max_filters,
        kernel_size=kernel_size,
        convs_per_level=convs_per_level,
        skip_ratio=skip_ratio,
        dropout=dropout,
        name="unet",
    )
    # masks are computed in float32 even under a mixed-precision policy (sum to 1 exactly)
    masks = StemSoftmax(n_stems=n_stems, dtype="float32", name="masks")(logits)
    return keras.Model(mixture, masks, name=name)
