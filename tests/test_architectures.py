"""The separation architectures: shapes, unity masks, save/load, layer configs, learning.

Tiny versions of each architecture (TINY_OPTIONS) keep these fast; they still take the full
(192, 1024, 2) input, so the shape contract is the real one.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tuiplayer.config import SIGNAL, STEMS  # noqa: E402
from tuiplayer.data.labels import FULL_LABELS, labels  # noqa: E402
from tuiplayer.errors import ModelError  # noqa: E402
from tuiplayer.nn.models import ARCHITECTURES, TINY_OPTIONS, build_model  # noqa: E402
from tuiplayer.nn.models import layers as L  # noqa: E402
from tuiplayer.nn.models.losses import GroupedL1, TrainerLoss, masked_magnitude_l1, with_group_loss  # noqa: E402

# Keras' TensorFlow/JAX backends call np.array on tensors whose __array__ predates numpy 2's copy=
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept:DeprecationWarning")

INPUT_SHAPE = (SIGNAL.n_frames, SIGNAL.n_bins, SIGNAL.channels)
OUTPUT_SHAPE = (*INPUT_SHAPE, len(STEMS))


def _numpy(x: Any) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def _mixture(batch: int, seed: int = 0) -> np.ndarray:
    """Random raw magnitudes with a realistic spread (many small values, some large)."""
    rng = np.random.default_rng(seed)
    return (rng.exponential(1.0, (batch, *INPUT_SHAPE)) ** 2 * 5).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_models() -> dict[str, Any]:
    keras.utils.set_random_seed(1)
    return {arch: build_model(arch, **TINY_OPTIONS[arch]) for arch in ARCHITECTURES}


def test_every_architecture_has_a_tiny_config() -> None:
    assert set(TINY_OPTIONS) == set(ARCHITECTURES) == {"unet", "hybrid", "d3net"}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_masks_have_the_contract_shape_and_sum_to_one(tiny_models: dict[str, Any], arch: str) -> None:
    model = tiny_models[arch]
    assert tuple(model.input_shape) == (None, *INPUT_SHAPE)
    assert tuple(model.output_shape) == (None, *OUTPUT_SHAPE)
    x = _mixture(2)
    x[1, :10] = 0.0  # silent frames too
    masks = _numpy(model(x, training=False))
    assert masks.shape == (2, *OUTPUT_SHAPE)
    assert masks.dtype == np.float32
    assert np.isfinite(masks).all()
    assert masks.min() >= 0.0
    np.testing.assert_allclose(masks.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_save_load_gives_identical_output(tiny_models: dict[str, Any], arch: str, tmp_path: Any) -> None:
    model = tiny_models[arch]
    x = _mixture(1, seed=3)
    before = _numpy(model(x, training=False))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode: no lambdas, only registered layers
    after = _numpy(loaded(x, training=False))
    np.testing.assert_allclose(after, before, atol=1e-6, rtol=0)
    assert loaded.count_params() == model.count_params()


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_converts_to_litert_with_the_same_masks(tiny_models: dict[str, Any], arch: str) -> None:
    """The player runs models through LiteRT (nn.lite): each architecture converts with the
    builtin operators only and gives the Keras model's masks."""
    from ai_edge_litert.interpreter import Interpreter

    from tuiplayer.nn import lite

    model = tiny_models[arch]
    interpreter = Interpreter(model_content=lite.convert(model), num_threads=1)
    interpreter.allocate_tensors()
    runner = lite.LiteRunner(None, interpreter, interpreter.get_input_details()[0]["index"],  # type: ignore[arg-type]
                             interpreter.get_output_details()[0]["index"])
    x = _mixture(2, seed=4)
    np.testing.assert_allclose(runner(x), _numpy(model(x, training=False)), atol=1e-4, rtol=0)


CUSTOM_LAYER_ARGS: dict[type, dict[str, Any]] = {
    L.MagnitudeNorm: {"log_compress": False},
    L.StemSoftmax: {"n_stems": 3},
    L.RatioMask: {"n_stems": 2, "epsilon": 1e-3},
    L.PositionEmbedding: {"sequence_length": 12, "initializer_stddev": 0.5},
    L.LearnedMix: {"per_bin": False, "initial_weight": 0.25},
    L.ApplyMasks: {},
}


def test_every_custom_layer_is_covered() -> None:
    assert set(CUSTOM_LAYER_ARGS) == set(L.CUSTOM_LAYERS)


@pytest.mark.parametrize("cls", L.CUSTOM_LAYERS, ids=lambda cls: cls.__name__)
def test_custom_layer_config_round_trip(cls: type) -> None:
    args = CUSTOM_LAYER_ARGS[cls]
    layer = cls(name="probe", **args)
    config = layer.get_config()
    # every constructor argument is listed explicitly, with the value given
    parameters = [
        p
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    for parameter in parameters:
        assert parameter.name in config, parameter.name
    for key, value in args.items():
        assert config[key] == value
    again = cls.from_config(config)
    assert again.get_config() == config
    # through the registry, as a saved model is read back
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == f"tuiplayer>{cls.__name__}"
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is cls
    assert revived.get_config() == config


@pytest.mark.parametrize(
    ("cls", "args"),
    [
        (L.MagnitudeNorm, {"log_compress": 1}),
        (L.StemSoftmax, {"n_stems": 0}),
        (L.RatioMask, {"epsilon": 0.0}),
        (L.RatioMask, {"n_stems": "4"}),
        (L.PositionEmbedding, {"sequence_length": -1}),
        (L.LearnedMix, {"per_bin": "yes"}),
    ],
)
def test_custom_layers_reject_bad_arguments(cls: type, args: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Received:"):
        cls(**args)


def test_ratio_mask_sums_to_one_and_splits_silence_evenly() -> None:
    rng = np.random.default_rng(0)
    estimates = [rng.exponential(1.0, (1, 4, 8, 2)).astype(np.float32) for _ in STEMS]
    estimates[0][0, 0] = 0.0
    for e in estimates:
        e[0, 1] = 0.0  # a frame where every stem is silent
    masks = _numpy(L.RatioMask(n_stems=4)(estimates))
    assert masks.shape == (1, 4, 8, 2, 4)
    np.testing.assert_allclose(masks.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(masks[0, 1], 0.25, atol=1e-6)
    expected = estimates[1][0, 2] / sum(e[0, 2] for e in estimates)
    np.testing.assert_allclose(masks[0, 2, :, :, 1], expected, rtol=1e-4)


def test_stem_softmax_layout_is_channel_major() -> None:
    logits = np.zeros((1, 2, 3, 2 * 4), np.float32)
    logits[..., 1 * 4 + 2] = 50.0  # channel 1, stem 2 ("bass")
    masks = _numpy(L.StemSoftmax(n_stems=4)(logits))
    assert masks.shape == (1, 2, 3, 2, 4)
    np.testing.assert_allclose(masks[..., 1, 2], 1.0, atol=1e-6)
    np.testing.assert_allclose(masks[..., 0, :], 0.25, atol=1e-6)


def test_loss_is_zero_for_the_oracle_ratio_mask() -> None:
    rng = np.random.default_rng(1)
    stems = rng.exponential(1.0, (2, 4, 8, 2, 4)).astype(np.float32)
    mixture = stems.sum(-1)
    oracle = stems / mixture[..., None]
    assert float(masked_magnitude_l1(stems, oracle, mixture)) == pytest.approx(0.0, abs=1e-5)
    even = np.full_like(oracle, 0.25)
    expected = np.abs(even * mixture[..., None] - stems).mean()
    assert float(masked_magnitude_l1(stems, even, mixture)) == pytest.approx(expected, rel=1e-5)
    weighted = float(masked_magnitude_l1(stems, even, mixture, stem_weights=(2, 0, 0, 0)))
    assert weighted == pytest.approx(2 * np.abs(even * mixture[..., None] - stems)[..., 0].mean() / 4, rel=1e-5)
    labels = np.repeat(FULL_LABELS[None], 2, axis=0)
    per_example = _numpy(GroupedL1()([even * mixture[..., None], stems, labels]))
    np.testing.assert_allclose(per_example, np.abs(even * mixture[..., None] - stems).mean(axis=(1, 2, 3, 4)),
                               rtol=1e-5)  # full labels: the plain formula, per example
    weighted = _numpy(GroupedL1(stem_weights=(2, 0, 0, 0))([even * mixture[..., None], stems, labels]))
    np.testing.assert_allclose(weighted, 2 * np.abs(even * mixture[..., None] - stems)[..., 0].mean(axis=(1, 2, 3)) / 4,
                               rtol=1e-5)
    assert GroupedL1.from_config(GroupedL1(stem_weights=(1, 2, 3, 4)).get_config()).stem_weights == (1, 2, 3, 4)
    with pytest.raises(ValueError, match="Received:"):
        GroupedL1(stem_weights=(1, 2))


def test_partial_labels_judge_only_what_they_know() -> None:
    """Vocals and the sum of the rest known (a real instrumental under a generated voice): how
    the estimate splits the rest among drums, bass and other costs nothing; a lower bound (a
    real guitar inside "other") costs only where "other" holds less than it."""
    rng = np.random.default_rng(2)
    stems = rng.exponential(1.0, (1, 4, 8, 2, 4)).astype(np.float32)
    vocal_and_rest = labels((["vocals"], False), (["drums", "bass", "other"], False))
    targets = np.zeros_like(stems)
    targets[..., 0], targets[..., 1] = stems[..., 0], stems[..., 1:].sum(-1)
    loss = GroupedL1()
    shuffled = stems.copy()
    shuffled[..., 1:] = stems[..., 1:][..., ::-1]  # the rest split another way, same sum
    assert float(_numpy(loss([shuffled, targets, vocal_and_rest[None]]))[0]) == pytest.approx(0.0, abs=1e-6)
    wrong_vocals = stems.copy()
    wrong_vocals[..., 0] += 1.0  # vocals 1 too loud everywhere; the rest's sum still right
    assert float(_numpy(loss([wrong_vocals, targets, vocal_and_rest[None]]))[0]) == pytest.approx(1.0 / 4, rel=1e-5)
    at_least = labels((["other"], True))
    guitar = np.zeros_like(stems)
    guitar[..., 0] = stems[..., 3]
    assert float(_numpy(loss([stems * 1.5, guitar, at_least[None]]))[0]) == pytest.approx(0.0, abs=1e-6)
    short = float(_numpy(loss([stems * 0.5, guitar, at_least[None]]))[0])
    assert short == pytest.approx(0.5 * stems[..., 3].mean() / 4, rel=1e-5)  # only the shortfall


def test_build_model_rejects_unknown_names_and_bad_values() -> None:
    with pytest.raises(ModelError, match="unknown architecture"):
        build_model("demucs")
    with pytest.raises(ModelError, match="no option"):
        build_model("unet", widht=3)
    with pytest.raises(ModelError, match="Received: depth=0"):
        build_model("unet", depth=0)
    with pytest.raises(ModelError, match="num_heads"):
        build_model("hybrid", **{**TINY_OPTIONS["hybrid"], "d_model": 15})
    with pytest.raises(ModelError, match="n_frames"):
        build_model("d3net", **{**TINY_OPTIONS["d3net"], "levels": 7})


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_a_few_gradient_steps_reduce_the_loss(arch: str) -> None:
    keras.utils.set_random_seed(7)
    separator = build_model(arch, **TINY_OPTIONS[arch])
    trainer = with_group_loss(separator)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2), loss=TrainerLoss())
    # a learnable batch: stems with distinct spectral shapes, mixture = their sum
    rng = np.random.default_rng(0)
    bins = np.linspace(0.0, 1.0, SIGNAL.n_bins, dtype=np.float32)
    profiles = np.stack([np.exp(-((bins - c) ** 2) / 0.01) for c in (0.5, 0.9, 0.05, 0.25)], -1)
    gains = rng.exponential(1.0, (2, SIGNAL.n_frames, 1, SIGNAL.channels, 4)).astype(np.float32)
    stems = (gains * profiles[None, None, :, None, :]).astype(np.float32)
    mixture = stems.sum(-1)
    # losses of the training-mode forward pass (BatchNorm on batch statistics) at each step
    batch = (mixture, stems, np.repeat(FULL_LABELS[None], len(mixture), axis=0))
    losses = [float(trainer.train_on_batch(batch, np.zeros(len(mixture), np.float32))) for _ in range(15)]
    assert np.isfinite(losses).all()
    assert min(losses[-3:]) < 0.9 * losses[0], losses
    # the wrapper trained the separator itself
    masks = _numpy(separator(mixture, training=False))
    np.testing.assert_allclose(masks.sum(-1), 1.0, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(("arch", "max_params"), [("unet", 5_000_000), ("hybrid", 20_000_000), ("d3net", 8_000_000)])
def test_default_sizes_build(arch: str, max_params: int) -> None:
    model = build_model(arch)
    assert tuple(model.output_shape) == (None, *OUTPUT_SHAPE)
    assert 500_000 < model.count_params() < max_params


@pytest.mark.slow
def test_mixed_precision_masks_are_float32_and_sum_to_one() -> None:
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        models = [build_model(arch, **TINY_OPTIONS[arch]) for arch in ARCHITECTURES]
    finally:
        keras.config.set_dtype_policy(previous)
    x = _mixture(1)
    for model in models:
        masks = _numpy(model(x, training=False))
        assert masks.dtype == np.float32
        assert masks.min() >= 0.0
        np.testing.assert_allclose(masks.sum(-1), 1.0, atol=1e-5)
