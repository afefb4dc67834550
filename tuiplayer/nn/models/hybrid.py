"""`hybrid` (v0.1b): frame transformer + small U-Nets, one path per stem.

    mixture magnitude M (b, T=192, F=1024, C=2) ─► MagnitudeNorm ─► x
    x ─► per frame: Dense(F·C → d) (linear) + learned position embedding ─► trunk_layers ×
         pre-norm transformer layers ─► tokens (b, T, d)
    tokens ─┬► vocals branch: (branch_layers-1) self-attention layers, then one layer whose
            │  attention is cross-attention to the drums branch ─► Dense(d → F·C) ─► vocals logits
            └► drums branch: the same, attending to the vocals branch ─► drums logits
    x[:, :, :bass_bins] ─► Dense(bass_bins·C → bass_d) + positions ─► bass_layers transformer
         layers (smaller d) ─► Dense(→ bass_bins·C), zero above bass_bins ─► bass logits (low band)
    x ─► small parallel U-Net ─► vocals, drums, bass logits (full band)
    each of vocals, drums, bass: LearnedMix(transformer logits, U-Net logits) (per-bin weights)
         ─► sigmoid × M ─► estimate (non-negative magnitude)
    [x, norm(vocals, drums, bass estimates, relu(M − their sum))] ─► small "other" U-Net
         ─► sigmoid × M ─► other estimate
    RatioMask: mask_j = (e_j + ε/4) / Σ_k (e_k + ε/4) ─► masks (b, T, F, C, 4), sum to 1.

The vocals and drums cross-attention sits in their last branch layer (both directions read the
branches as they were before that layer). Masks: ratio of non-negative estimates + ε.
"""

from __future__ import annotations

from typing import Any

import keras

from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.errors import ModelError
from tuiplayer.nn.models.layers import (
    LearnedMix,
    MagnitudeNorm,
    PositionEmbedding,
    RatioMask,
    transformer_block,
)
from tuiplayer.nn.models.options import check_divisible, check_geometry, check_options
from tuiplayer.nn.models.unet import unet_body, unet_features


def _frame_transformer(
    spectrogram: Any,
    *,
    d_model: int,
    num_heads: int,
    n_layers: int,
    ffn_multiplier: int,
    dropout: float,
    name: str,
) -> Any:
    """(b, T, F, C) → tokens (b, T, d_model): linear frame projection, positions, n_layers layers."""
    _, n_frames, n_bins, channels = spectrogram.shape
    # one token per frame: (b, T, F, C) → (b, T, F·C) → (b, T, d)
    frames = keras.layers.Reshape((n_frames, n_bins * channels), name=f"{name}_frames")(spectrogram)
    tokens = keras.layers.Dense(d_model, name=f"{name}_projection")(frames)
    tokens = PositionEmbedding(n_frames, name=f"{name}_positions")(tokens)
    if dropout:
        tokens = keras.layers.Dropout(dropout, name=f"{name}_drop_in")(tokens)
    for index in range(n_layers):
        tokens = transformer_block(
            tokens,
            num_heads=num_heads,
            ffn_dim=ffn_multiplier * d_model,
            dropout=dropout,
            name=f"{name}_layer{index}",
        )
    return tokens


def _tokens_to_spectrogram(tokens: Any, n_bins: int, channels: int, name: str) -> Any:
    """(b, T, d) → final LayerNorm → Dense(n_bins·C) → (b, T, n_bins, C) logits."""
    n_frames = tokens.shape[1]
    tokens = keras.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_ln_out")(tokens)
    flat = keras.layers.Dense(n_bins * channels, name=f"{name}_unprojection")(tokens)
    # (b, T, F·C) → (b, T, F, C)
    return keras.layers.Reshape((n_frames, n_bins, channels), name=f"{name}_spectrogram")(flat)


def _estimate(logits: Any, mixture: Any, name: str) -> Any:
    """sigmoid(logits) × mixture magnitude: a non-negative stem magnitude estimate."""
    mask = keras.layers.Activation("sigmoid", name=f"{name}_sigmoid")(logits)
    return keras.layers.Multiply(name=f"{name}_estimate")([mask, mixture])


def build_hybrid(
    *,
    d_model: int = 384,
    num_heads: int = 8,
    trunk_layers: int = 4,
    branch_layers: int = 2,
    ffn_multiplier: int = 2,
    bass_bins: int = 256,
    bass_d_model: int = 192,
    bass_heads: int = 4,
    bass_layers: int = 2,
    unet_base_filters: int = 8,
    unet_depth: int = 5,
    unet_max_filters: int = 64,
    other_base_filters: int = 8,
    other_depth: int = 5,
    other_max_filters: int = 64,
    dropout: float = 0.1,
    n_frames: int = SIGNAL.n_frames,
    n_bins: int = SIGNAL.n_bins,
    channels: int = SIGNAL.channels,
    name: str = "hybrid",
) -> keras.Model:
    """The `hybrid` separator: magnitude (b, n_frames, n_bins, channels) → masks (…, channels, 4).

    d_model, num_heads, trunk_layers: the shared frame transformer (d_model divisible by heads).
    branch_layers: layers of each of the vocals and drums branches, the last with cross-attention.
    ffn_multiplier: feed-forward width = ffn_multiplier × d (all transformers).
    bass_bins, bass_d_model, bass_heads, bass_layers: the bass transformer over bins 0..bass_bins-1.
    unet_*: the parallel U-Net (vocals, drums, bass logits); other_*: the "other" U-Net.
    dropout: rate in the transformers and the U-Nets' deepest decoder levels during training.
    Masks: ratio of the four non-negative estimates + ε (RatioMask), summing to 1.
    """
    check_options(
        ints={
            "d_model": d_model,
            "num_heads": num_heads,
            "ffn_multiplier": ffn_multiplier,
            "branch_layers": branch_layers,
            "bass_bins": bass_bins,
            "bass_d_model": bass_d_model,
            "bass_heads": bass_heads,
            "unet_base_filters": unet_base_filters,
            "unet_depth": unet_depth,
            "unet_max_filters": unet_max_filters,
            "other_base_filters": other_base_filters,
            "other_depth": other_depth,
            "other_max_filters": other_max_filters,
        },
        counts={"trunk_layers": trunk_layers, "bass_layers": bass_layers},
        fractions={"dropout": dropout},
    )
    check_divisible("d_model", d_model, num_heads, "num_heads")
    check_divisible("bass_d_model", bass_d_model, bass_heads, "bass_heads")
    check_geometry(n_frames, n_bins, channels, 2 ** max(unet_depth, other_depth))
    if bass_bins > n_bins:
        raise ModelError(f"option bass_bins must be ≤ n_bins ({n_bins}). Received: bass_bins={bass_bins}")
    dims = (n_frames, n_bins, channels)

    mixture = keras.Input(dims, name="mixture_magnitude")
    x = MagnitudeNorm(name="input_norm")(mixture)

    # shared frame transformer, then the vocals and drums branches
    tokens = _frame_transformer(
        x,
        d_model=d_model,
        num_heads=num_heads,
        n_layers=trunk_layers,
        ffn_multiplier=ffn_multiplier,
        dropout=dropout,
        name="trunk",
    )
    branch = {"vocals": tokens, "drums": tokens}
    block = {"num_heads": num_heads, "ffn_dim": ffn_multiplier * d_model, "dropout": dropout}
    for index in range(branch_layers - 1):
        for stem in branch:
            branch[stem] = transformer_block(branch[stem], name=f"{stem}_layer{index}", **block)
    last = branch_layers - 1
    branch = {
        "vocals": transformer_block(
            branch["vocals"], context=branch["drums"], name=f"vocals_layer{last}_cross", **block
        ),
        "drums": transformer_block(branch["drums"], context=branch["vocals"], name=f"drums_layer{last}_cross", **block),
    }
    transformer_logits = {stem: _tokens_to_spectrogram(branch[stem], n_bins, channels, name=stem) for stem in branch}

    # bass: a smaller transformer over the low bins; zero logits above them (the U-Net's there)
    low = keras.layers.Cropping2D(((0, 0), (0, n_bins - bass_bins)), name="bass_low_bins")(x)
    bass_tokens = _frame_transformer(
        low,
        d_model=bass_d_model,
        num_heads=bass_heads,
        n_layers=bass_layers,
        ffn_multiplier=ffn_multiplier,
        dropout=dropout,
        name="bass",
    )
    bass_low = _tokens_to_spectrogram(bass_tokens, bass_bins, channels, name="bass")
    transformer_logits["bass"] = keras.layers.ZeroPadding2D(((0, 0), (0, n_bins - bass_bins)), name="bass_full_band")(
        bass_low
    )

    # the parallel U-Net: one 1×1 head per stem on shared features
    features = unet_features(
        x,
        base_filters=unet_base_filters,
        depth=unet_depth,
        max_filters=unet_max_filters,
        kernel_size=5,
        convs_per_level=0,
        skip_ratio=0.5,
        dropout=dropout,
        name="unet",
    )
    estimates = {}
    for stem in ("vocals", "drums", "bass"):
        unet_logits = keras.layers.Conv2D(channels, 1, name=f"unet_{stem}_logits")(features)
        logits = LearnedMix(per_bin=True, initial_weight=1.0, name=f"{stem}_mix")(
            [transformer_logits[stem], unet_logits]
        )
        estimates[stem] = _estimate(logits, mixture, stem)

    # "other": a small U-Net fed the input, the three estimates and what they leave unexplained
    explained = keras.layers.Add(name="explained")(list(estimates.values()))
    residual = keras.layers.Subtract(name="residual_signed")([mixture, explained])
    residual = keras.layers.Activation("relu", name="residual")(residual)
    stems_in = keras.layers.Concatenate(name="other_stems_in")([*estimates.values(), residual])
    stems_in = MagnitudeNorm(name="other_stems_norm")(stems_in)
    other_in = keras.layers.Concatenate(name="other_in")([x, stems_in])
    other_logits = unet_body(
        other_in,
        out_channels=channels,
        base_filters=other_base_filters,
        depth=other_depth,
        max_filters=other_max_filters,
        kernel_size=5,
        convs_per_level=0,
        skip_ratio=0.5,
        dropout=dropout,
        name="other",
    )
    estimates["other"] = _estimate(other_logits, mixture, "other")

    # masks in float32 even under a mixed-precision policy (ε and the unit sum)
    masks = RatioMask(n_stems=len(STEMS), dtype="float32", name="masks")([estimates[stem] for stem in STEMS])
    return keras.Model(mixture, masks, name=name)
