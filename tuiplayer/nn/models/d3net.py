"""`d3net`: a densely connected multi-dilated CNN in the style of D3Net (Takahashi & Mitsufuji,
CVPR 2021), much smaller than the paper's and full-band in one network.

    mixture magnitude (b, T=192, F=1024, C=2) ─► MagnitudeNorm ─► Conv 3×3 stride 2
        (halves frames and bins: the dense blocks work at (T/2, F/2) and below)
    encoder: `levels` × [D3 block ─► skip, AveragePool 2×2]
    bottleneck: D3 block
    decoder: `levels` × [ConvT 2×2 stride 2, concat skip, D3 block]
    ConvT 2×2 stride 2 back to (T, F), concat the normalised input ─► Conv 1×1
        ─► logits (b, T, F, C·4) ─► StemSoftmax ─► masks (b, T, F, C, 4), softmax over stems.

D2 block (multi-dilated dense block) of L layers with growth k: layer l sees the block input and
the outputs of layers 0..l-1. In the multi-dilated form (the paper's) the part of its input that
came from layer j-1 (the block input for j = 0) is convolved with dilation 2^j and the parts are
summed, so each input is read at a dilation matched to its receptive field (no gridding); with
`multidilated=False` the concatenation is convolved once with dilation 2^l. Output: the
concatenation of the L layer outputs (L·k channels).
D3 block: M D2 blocks densely connected the same way (block m sees the D3 input and the outputs
of blocks 0..m-1), output the concatenation of the M block outputs (M·L·k channels).
Growth doubles per level (cost per level stays about the same as the area quarters).
"""

from __future__ import annotations

from typing import Any

import keras

from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.errors import ModelError
from tuiplayer.nn.models.layers import MagnitudeNorm, StemSoftmax
from tuiplayer.nn.models.options import check_geometry, check_options


def _bn_relu(x: Any, name: str) -> Any:
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_act")(x)


def d2_block(x: Any, *, growth: int, n_layers: int, multidilated: bool, name: str) -> Any:
    """Multi-dilated dense block: (b, T, F, c) → (b, T, F, n_layers·growth)."""
    chunks = [x]  # chunk j: the block input (j = 0) or layer j-1's output
    for layer in range(n_layers):
        lname = f"{name}_l{layer}"
        if multidilated:
            parts = [
                keras.layers.Conv2D(
                    growth, 3, dilation_rate=2**j, padding="same", use_bias=False, name=f"{lname}_d{2**j}"
                )(chunk)
                for j, chunk in enumerate(chunks)
            ]
            y = parts[0] if len(parts) == 1 else keras.layers.Add(name=f"{lname}_sum")(parts)
        else:
            inputs = chunks[0] if len(chunks) == 1 else keras.layers.Concatenate(name=f"{lname}_cat")(chunks)
            y = keras.layers.Conv2D(
                growth, 3, dilation_rate=2**layer, padding="same", use_bias=False, name=f"{lname}_conv"
            )(inputs)
        chunks.append(_bn_relu(y, lname))
    outputs = chunks[1:]
    return outputs[0] if len(outputs) == 1 else keras.layers.Concatenate(name=f"{name}_out")(outputs)


def d3_block(x: Any, *, growth: int, n_layers: int, n_blocks: int, multidilated: bool, name: str) -> Any:
    """Dense block of D2 blocks: (b, T, F, c) → (b, T, F, n_blocks·n_layers·growth)."""
    seen = [x]
    outputs = []
    for block in range(n_blocks):
        inputs = seen[0] if len(seen) == 1 else keras.layers.Concatenate(name=f"{name}_b{block}_in")(seen)
        y = d2_block(inputs, growth=growth, n_layers=n_layers, multidilated=multidilated, name=f"{name}_b{block}")
        seen.append(y)
        outputs.append(y)
    return outputs[0] if len(outputs) == 1 else keras.layers.Concatenate(name=f"{name}_out")(outputs)


def build_d3net(
    *,
    stem_filters: int = 32,
    growth: int = 8,
    d2_layers: int = 4,
    d3_blocks: int = 2,
    levels: int = 3,
    multidilated: bool = True,
    dropout: float = 0.0,
    n_frames: int = SIGNAL.n_frames,
    n_bins: int = SIGNAL.n_bins,
    channels: int = SIGNAL.channels,
    name: str = "d3net",
) -> keras.Model:
    """The `d3net` separator: magnitude (b, n_frames, n_bins, channels) → masks (…, channels, 4).

    stem_filters: filters of the first convolution (which halves frames and bins).
    growth: growth rate k of the D2 blocks at the first level (doubling per level).
    d2_layers: layers per D2 block (dilations 1, 2, 4, …); d3_blocks: D2 blocks per D3 block.
    levels: pooling steps after the first convolution (n_frames, n_bins divisible by 2**(levels+1)).
    multidilated: the paper's per-input dilations (True) or one dilation per layer (False).
    dropout: rate before the output convolution during training.
    Masks: softmax over the stems (non-negative, sum to 1).
    """
    check_options(
        ints={"stem_filters": stem_filters, "growth": growth, "d2_layers": d2_layers, "d3_blocks": d3_blocks},
        counts={"levels": levels},
        fractions={"dropout": dropout},
    )
    if not isinstance(multidilated, bool):
        raise ModelError(f"option multidilated must be true or false. Received: multidilated={multidilated!r}")
    check_geometry(n_frames, n_bins, channels, 2 ** (levels + 1))
    n_stems = len(STEMS)
    block = {"n_layers": d2_layers, "n_blocks": d3_blocks, "multidilated": multidilated}

    mixture = keras.Input((n_frames, n_bins, channels), name="mixture_magnitude")
    normalised = MagnitudeNorm(name="input_norm")(mixture)
    # (b, T, F, C) → (b, T/2, F/2, stem_filters)
    x = keras.layers.Conv2D(stem_filters, 3, strides=(2, 2), padding="same", use_bias=False, name="stem_conv")(
        normalised
    )
    x = _bn_relu(x, "stem")

    skips = []
    for level in range(levels):
        x = d3_block(x, growth=growth * 2**level, name=f"enc{level}", **block)
        skips.append(x)
        x = keras.layers.AveragePooling2D(2, name=f"down{level}")(x)
    x = d3_block(x, growth=growth * 2**levels, name="bottleneck", **block)
    for level in reversed(range(levels)):
        width = skips[level].shape[-1]
        x = keras.layers.Conv2DTranspose(width, 2, strides=2, use_bias=False, name=f"up{level}")(x)
        x = _bn_relu(x, f"up{level}")
        x = keras.layers.Concatenate(name=f"dec{level}_in")([x, skips[level]])
        x = d3_block(x, growth=growth * 2**level, name=f"dec{level}", **block)

    # (b, T/2, F/2, c) → (b, T, F, stem_filters), then the input again → per-bin logits
    x = keras.layers.Conv2DTranspose(stem_filters, 2, strides=2, use_bias=False, name="up_bins")(x)
    x = _bn_relu(x, "up_bins")
    x = keras.layers.Concatenate(name="out_in")([x, normalised])
    if dropout:
        x = keras.layers.Dropout(dropout, name="out_drop")(x)
    logits = keras.layers.Conv2D(channels * n_stems, 1, name="logits")(x)
    masks = StemSoftmax(n_stems=n_stems, dtype="float32", name="masks")(logits)
    return keras.Model(mixture, masks, name=name)
