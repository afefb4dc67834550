"""Custom Keras 3 layers shared by the separation architectures, plus functional building blocks.

Everything here is pure Keras 3 (`keras.ops`, `keras.layers`): the same code runs under the
TensorFlow, JAX and PyTorch backends, and a model saved as `.keras` under one loads under another.
Each custom layer is registered as `tuiplayer>ClassName`, validates its constructor arguments
(a `ValueError` whose message ends "Received: …"), makes its weights in `build()`, and lists
every constructor argument in `get_config()` — so a default changed later never silently changes
a model saved earlier.

Shapes (time-first, channels-last, as everywhere in tuiplayer):
    spectrogram  (batch, n_frames, n_bins, channels)            float32 magnitudes
    tokens       (batch, n_frames, d_model)                      one token per STFT frame
    masks        (batch, n_frames, n_bins, channels, n_stems)    stems last, in STEMS order
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

PACKAGE = "tuiplayer"
"""Registration package of every custom object: saved configs name them `tuiplayer>Class`."""


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be a bool. Received: {name}={value!r}")


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an int ≥ {minimum}. Received: {name}={value!r}")


def _check_float(name: str, value: object, minimum: float, inclusive: bool = True) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = value >= minimum if inclusive else value > minimum
    if not ok:
        bound = f"≥ {minimum}" if inclusive else f"> {minimum}"
        raise ValueError(f"`{name}` must be a number {bound}. Received: {name}={value!r}")


def _static_rank4(layer: str, shape: Sequence[int | None]) -> tuple[int, int, int]:
    """(n_frames, n_bins, channels) of a (batch, frames, bins, channels) shape, all known."""
    if len(shape) != 4 or any(dim is None for dim in shape[1:]):
        raise ValueError(
            f"{layer} expects (batch, n_frames, n_bins, channels) with known frames, bins and "
            f"channels. Received: input_shape={tuple(shape)}"
        )
    return int(shape[1]), int(shape[2]), int(shape[3])  # type: ignore[arg-type]


@keras.saving.register_keras_serializable(package=PACKAGE)
class MagnitudeNorm(keras.layers.Layer):
    """Input normalisation of raw magnitudes: `log1p` compression, then a learned affine map.

    y = log1p(max(x, 0)) · scale[bin, channel] + offset[bin, channel]  (open-unmix style, with
    log compression first because STFT magnitudes span many decades). scale starts at 1,
    offset at 0. With `log_compress=False` the affine map is applied to x itself.

    Shape: (batch, n_frames, n_bins, channels) → the same.
    """

    def __init__(self, log_compress: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_bool("log_compress", log_compress)
        self.log_compress = log_compress

    def build(self, input_shape: Sequence[int | None]) -> None:
        _, n_bins, channels = _static_rank4(type(self).__name__, input_shape)
        self.scale = self.add_weight(shape=(n_bins, channels), initializer="ones", name="scale")
        self.offset = self.add_weight(shape=(n_bins, channels), initializer="zeros", name="offset")

    def call(self, inputs: Any) -> Any:
        x = ops.maximum(inputs, 0.0)
        if self.log_compress:
            x = ops.log1p(x)
        return x * self.scale + self.offset

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"log_compress": self.log_compress})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class StemSoftmax(keras.layers.Layer):
    """Mask logits → masks that are non-negative and sum to 1 over the stems (softmax).

    Input (batch, n_frames, n_bins, channels·n_stems) with the last axis laid out channel-major
    (index = channel·n_stems + stem); output (batch, n_frames, n_bins, channels, n_stems),
    the softmax over the stem axis. Computed in the layer's dtype (make it float32 under mixed
    precision so the masks sum to 1 to float32 rounding).
    """

    def __init__(self, n_stems: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_int("n_stems", n_stems, 1)
        self.n_stems = n_stems

    def _geometry(self, input_shape: Sequence[int | None]) -> tuple[int, int, int]:
        n_frames, n_bins, width = _static_rank4(type(self).__name__, input_shape)
        if width % self.n_stems:
            raise ValueError(
                f"StemSoftmax needs a last axis divisible by n_stems={self.n_stems}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        return n_frames, n_bins, width // self.n_stems

    def build(self, input_shape: Sequence[int | None]) -> None:
        self._geometry(input_shape)

    def call(self, inputs: Any) -> Any:
        n_frames, n_bins, channels = self._geometry(inputs.shape)
        # (batch, frames, bins, channels·stems) → (batch, frames, bins, channels, stems)
        logits = ops.reshape(inputs, (-1, n_frames, n_bins, channels, self.n_stems))
        return ops.softmax(logits, axis=-1)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        n_frames, n_bins, channels = self._geometry(input_shape)
        return (input_shape[0], n_frames, n_bins, channels, self.n_stems)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"n_stems": self.n_stems})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class RatioMask(keras.layers.Layer):
    """Non-negative stem estimates → ratio masks that sum to 1 over the stems.

    mask_j = (e_j + ε/n) / Σ_k (e_k + ε/n), with e_j = max(estimate_j, 0) and n = n_stems (the
    Spleeter form). The denominator is the sum of the numerators, so the masks add up to 1 to
    float32 rounding; where every estimate is 0 each stem gets 1/n. `epsilon` is in magnitude
    units. Computed in the layer's dtype (keep it float32 under mixed precision: ε underflows in
    float16).

    Input: a list of n_stems tensors (batch, n_frames, n_bins, channels), in STEMS order.
    Output: (batch, n_frames, n_bins, channels, n_stems).
    """

    def __init__(self, n_stems: int = 4, epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_int("n_stems", n_stems, 1)
        _check_float("epsilon", epsilon, 0.0, inclusive=False)
        self.n_stems = n_stems
        self.epsilon = float(epsilon)

    def _check_inputs(self, input_shape: Any) -> tuple[int | None, ...]:
        shapes = list(input_shape) if isinstance(input_shape, (list, tuple)) else []
        if len(shapes) != self.n_stems or not all(isinstance(s, (list, tuple)) for s in shapes):
            raise ValueError(
                f"RatioMask expects a list of n_stems={self.n_stems} estimates. Received: input_shape={input_shape!r}"
            )
        first = tuple(shapes[0])
        _static_rank4(type(self).__name__, first)
        if any(tuple(s)[1:] != first[1:] for s in shapes):
            raise ValueError(f"RatioMask estimates must share one shape. Received: input_shape={shapes!r}")
        return first

    def build(self, input_shape: Any) -> None:
        self._check_inputs(input_shape)

    def call(self, inputs: Sequence[Any]) -> Any:
        # n × (batch, frames, bins, channels) → (batch, frames, bins, channels, stems)
        estimates = ops.stack([ops.maximum(e, 0.0) for e in inputs], axis=-1)
        numerators = estimates + self.epsilon / self.n_stems
        return numerators / ops.sum(numerators, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        return (*self._check_inputs(input_shape), self.n_stems)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"n_stems": self.n_stems, "epsilon": self.epsilon})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned embedding per position: tokens (batch, T, d) + table[:T], T ≤ sequence_length.

    The table (sequence_length, d) starts as N(0, initializer_stddev²).
    """

    def __init__(self, sequence_length: int, initializer_stddev: float = 0.02, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_int("sequence_length", sequence_length, 1)
        _check_float("initializer_stddev", initializer_stddev, 0.0, inclusive=False)
        self.sequence_length = sequence_length
        self.initializer_stddev = float(initializer_stddev)

    def build(self, input_shape: Sequence[int | None]) -> None:
        if len(input_shape) != 3 or input_shape[2] is None:
            raise ValueError(
                f"PositionEmbedding expects (batch, length, d_model) with d_model known. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        length = input_shape[1]
        if length is not None and length > self.sequence_length:
            raise ValueError(
                f"PositionEmbedding holds {self.sequence_length} positions. Received: input_shape={tuple(input_shape)}"
            )
        self.embeddings = self.add_weight(
            shape=(self.sequence_length, int(input_shape[2])),
            initializer=keras.initializers.RandomNormal(stddev=self.initializer_stddev),
            name="embeddings",
        )

    def call(self, inputs: Any) -> Any:
        table = ops.cast(ops.convert_to_tensor(self.embeddings), inputs.dtype)
        length = inputs.shape[1]
        if length != self.sequence_length:
            if length is None:
                length = ops.shape(inputs)[1]
            table = ops.slice(table, (0, 0), (length, self.embeddings.shape[1]))
        return inputs + table

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"sequence_length": self.sequence_length, "initializer_stddev": self.initializer_stddev})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class LearnedMix(keras.layers.Layer):
    """A learned weighted sum of same-shaped spectrogram tensors: Σ_i w_i · x_i.

    With `per_bin=True` each input has one weight per (bin, channel), shape (n_inputs, n_bins,
    channels); otherwise one scalar per input. Weights start at `initial_weight`.

    Input: a list of tensors (batch, n_frames, n_bins, channels); output: the same shape.
    """

    def __init__(self, per_bin: bool = True, initial_weight: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_bool("per_bin", per_bin)
        _check_float("initial_weight", initial_weight, float("-inf"))
        self.per_bin = per_bin
        self.initial_weight = float(initial_weight)

    def _check_inputs(self, input_shape: Any) -> tuple[int | None, ...]:
        shapes = list(input_shape) if isinstance(input_shape, (list, tuple)) else []
        if len(shapes) < 2 or not all(isinstance(s, (list, tuple)) for s in shapes):
            raise ValueError(f"LearnedMix expects a list of ≥ 2 tensors. Received: input_shape={input_shape!r}")
        first = tuple(shapes[0])
        _static_rank4(type(self).__name__, first)
        if any(tuple(s)[1:] != first[1:] for s in shapes):
            raise ValueError(f"LearnedMix inputs must share one shape. Received: input_shape={shapes!r}")
        return first

    def build(self, input_shape: Any) -> None:
        first = self._check_inputs(input_shape)
        n_inputs = len(input_shape)
        shape = (n_inputs, first[2], first[3]) if self.per_bin else (n_inputs, 1, 1)
        self.mix_weights = self.add_weight(
            shape=shape, initializer=keras.initializers.Constant(self.initial_weight), name="mix_weights"
        )

    def call(self, inputs: Sequence[Any]) -> Any:
        total = inputs[0] * self.mix_weights[0]
        for index in range(1, len(inputs)):
            total = total + inputs[index] * self.mix_weights[index]
        return total

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        return self._check_inputs(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"per_bin": self.per_bin, "initial_weight": self.initial_weight})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ApplyMasks(keras.layers.Layer):
    """Masks × mixture magnitude → stem magnitude estimates.

    Input: [masks (batch, n_frames, n_bins, channels, n_stems), mixture (batch, n_frames, n_bins,
    channels)]; output (batch, n_frames, n_bins, channels, n_stems). No arguments.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def call(self, inputs: Sequence[Any]) -> Any:
        masks, mixture = inputs
        return masks * ops.expand_dims(ops.cast(mixture, masks.dtype), -1)

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        return tuple(input_shape[0])

    def get_config(self) -> dict[str, Any]:
        return super().get_config()


CUSTOM_LAYERS: tuple[type[keras.layers.Layer], ...] = (
    MagnitudeNorm,
    StemSoftmax,
    RatioMask,
    PositionEmbedding,
    LearnedMix,
    ApplyMasks,
)
"""Every custom layer of this package (tests round-trip each one's config)."""


# --- functional building blocks (built-in layers only, so they serialise with the model) ----------


def conv_bn_act(
    x: Any,
    filters: int,
    kernel_size: int | tuple[int, int],
    *,
    strides: int = 1,
    dilation: int = 1,
    activation: str = "relu",
    name: str,
) -> Any:
    """Conv2D (same padding, no bias) → BatchNorm → activation ("relu", "leaky_relu", "elu")."""
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        dilation_rate=dilation,
        padding="same",
        use_bias=False,
        name=f"{name}_conv",
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return _activation(x, activation, name)


def deconv_bn_act(x: Any, filters: int, kernel_size: int, *, activation: str = "relu", name: str) -> Any:
    """Conv2DTranspose (stride 2, same padding, no bias) → BatchNorm → activation."""
    x = keras.layers.Conv2DTranspose(
        filters, kernel_size, strides=2, padding="same", use_bias=False, name=f"{name}_deconv"
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return _activation(x, activation, name)


def _activation(x: Any, activation: str, name: str) -> Any:
    if activation == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.2, name=f"{name}_act")(x)
    return keras.layers.Activation(activation, name=f"{name}_act")(x)


def transformer_block(
    x: Any,
    *,
    num_heads: int,
    ffn_dim: int,
    dropout: float,
    name: str,
    context: Any | None = None,
) -> Any:
    """One pre-norm transformer encoder layer on tokens (batch, T, d) → (batch, T, d).

    x + MHA(LN(x), LN(context or x)), then + FFN(LN(·)) with a GELU hidden layer of ffn_dim.
    With `context` given the attention is cross-attention: x's tokens attend to context's.
    """
    d_model = x.shape[-1]
    query = keras.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_ln_q")(x)
    if context is None:
        source = query
    else:
        source = keras.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_ln_kv")(context)
    attended = keras.layers.MultiHeadAttention(
        num_heads=num_heads, key_dim=d_model // num_heads, dropout=dropout, name=f"{name}_mha"
    )(query, source)
    if dropout:
        attended = keras.layers.Dropout(dropout, name=f"{name}_drop_a")(attended)
    x = keras.layers.Add(name=f"{name}_res_a")([x, attended])
    hidden = keras.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_ln_f")(x)
    hidden = keras.layers.Dense(ffn_dim, activation="gelu", name=f"{name}_ffn_in")(hidden)
    hidden = keras.layers.Dense(d_model, name=f"{name}_ffn_out")(hidden)
    if dropout:
        hidden = keras.layers.Dropout(dropout, name=f"{name}_drop_f")(hidden)
    return keras.layers.Add(name=f"{name}_res_f")([x, hidden])
