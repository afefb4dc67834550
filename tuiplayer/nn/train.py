"""`tuiplayer train`: train a separator and write it as a model folder (DESIGN.md §5).

Pure Keras 3 (any backend): the same command trains under TensorFlow here and under JAX or
PyTorch on a GPU machine without TensorFlow (DESIGN.md §9); the saved `.keras` file loads
under TensorFlow in the player.

A run lives in a folder (default `runs/<name>`): `checkpoint.keras` (model and optimizer) and
`state.json` after every epoch, so an interrupted run resumes where it stopped (`--resume`,
automatic when the folder holds a checkpoint); `log.csv` and, under TensorFlow, TensorBoard
logs; validation SDR per stem after each epoch when a validation set is given, with the best
model kept as `best.keras`. At the end the best (or last) separator goes to
`<out>/model.keras` with its `card.json`, and `models/index.json` names it if it has no default.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tuiplayer.config import MODEL_SELECTIONS, SIGNAL, STEMS
from tuiplayer.errors import BadInput, TuiplayerError
from tuiplayer.files import write_text
from tuiplayer.modelstore import CARD_FILE, INDEX_FILE, WEIGHTS_FILE, file_sha256


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (recorded in the run folder and the card).

    data: dataset folders (MUSDB18-HQ layout) to train on. validation: a dataset folder to
    score after each epoch (median SDR per stem), or None. steps: optimizer steps in all;
    steps_per_epoch: steps between checkpoints and validations. hours: stop early after this
    much training time (the run can be resumed). options: the architecture's size options.
    init: a model (name or folder) whose weights start this run — training continued on new
    data or in a later session; its card's steps and hours are carried into the new card.
    stem_weights: the loss's weight per stem (STEMS order), or None for all 1 — weight the
    stems a model separates worst. select: which validation epoch's weights are kept, one of
    MODEL_SELECTIONS: "mean", the best mean SDR over the stems; "weakest", the best margin of the
    weakest stem over mixture/4 (every stem well above the floor, DESIGN.md §7).
    """

    data: tuple[str, ...]
    arch: str
    out: str
    run_dir: str
    steps: int = 20_000
    steps_per_epoch: int = 250
    batch_size: int = 8
    learning_rate: float = 1e-3
    seed: int = 0
    validation: str | None = None
    validation_tracks: int = 8
    validation_seconds: float = 20.0
    hours: float | None = None
    version: str = "0.1"
    options: dict[str, Any] = field(default_factory=dict)
    init: str | None = None
    stem_weights: tuple[float, ...] | None = None
    select: str = "mean"
    real: str | None = None
    real_share: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 1):
            raise BadInput(f"--learning-rate must be a number in (0, 1] (got {self.learning_rate})")
        if self.hours is not None and not (math.isfinite(self.hours) and self.hours > 0):
            raise BadInput(f"--hours must be a positive number of hours (got {self.hours})")
        if self.steps < 1 or self.steps_per_epoch < 1 or self.batch_size < 1:
            raise BadInput("--steps, --steps-per-epoch and --batch-size must be at least 1")
        # an epoch never runs past the steps asked for (--steps 1 is one step)
        object.__setattr__(self, "steps_per_epoch", min(self.steps_per_epoch, self.steps))
        if not (math.isfinite(self.real_share) and 0 <= self.real_share <= 1):
            raise BadInput(f"--real-share must be a number in [0, 1] (got {self.real_share})")
        if self.select not in MODEL_SELECTIONS:
            raise BadInput(f"select must be one of {', '.join(MODEL_SELECTIONS)}. Received: {self.select!r}")
        if self.stem_weights is not None and (
            len(self.stem_weights) != len(STEMS) or min(self.stem_weights) < 0 or max(self.stem_weights) <= 0
        ):
            raise BadInput(f"stem weights must be {len(STEMS)} numbers ≥ 0 ({', '.join(STEMS)}), not all 0")

    @property
    def epochs(self) -> int:
        return math.ceil(self.steps / self.steps_per_epoch)


class TrainingDiverged(TuiplayerError):
    """The loss became NaN or infinite: the weights are lost, nothing is written."""


def hardware() -> str:
    """A short description of where training runs (CPU model and cores, or the GPU)."""
    backend = _backend()
    gpu = _gpu_name(backend)
    if gpu:
        return f"{gpu} ({backend})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, no GPU ({backend})"


def _backend() -> str:
    import keras

    return keras.backend.backend()


def _gpu_name(backend: str) -> str | None:
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return f"{len(gpus)}× GPU" if gpus else None
        if backend == "jax":
            import jax

            devices = [d for d in jax.devices() if d.platform == "gpu"]
            return f"{len(devices)}× {devices[0].device_kind}" if devices else None
        if backend == "torch":
            import torch

            return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # no GPU stack at all
        return None
    return None


def _training_batches(config: TrainConfig, first_epoch: int) -> Iterator[tuple[tuple[np.ndarray, ...], np.ndarray]]:
    """Endless ((mixture (B,192,1024,2), targets (B,192,1024,2,4), labels (B,4,5)), zeros (B,))
    batches, augmented: the trainer's inputs, and a stand-in for y (its output is the loss).

    A resumed run continues with a new stream rather than repeating the first epochs'.
    """
    from tuiplayer.data.examples import iterate_batches
    from tuiplayer.data.tracks import find_tracks

    tracks = [track for folder in config.data for track in find_tracks(folder)]
    if not tracks:
        raise BadInput(f"no training tracks in {', '.join(config.data)}")
    real = None
    if config.real is not None and config.real_share > 0:
        from tuiplayer.data.real import RealSources

        real = RealSources(Path(config.real))
    for batch in iterate_batches(tracks, config.batch_size, seed=config.seed + 1000 * first_epoch, real=real,
                                 real_share=config.real_share):
        yield batch[:3], np.zeros(config.batch_size, dtype=np.float32)


def _validation_songs(config: TrainConfig) -> list[tuple[str, np.ndarray]]:
    """(name, stems (n_samples, 2, n_stems)) of the first validation tracks, cut to length."""
    if config.validation is None:
        return []
    from tuiplayer.data.tracks import find_tracks

    songs = []
    limit = int(config.validation_seconds * SIGNAL.sample_rate)
    for track in find_tracks(config.validation)[: config.validation_tracks]:
        stems = track.load_stems()
        songs.append((track.name, np.stack([stems[name][:limit] for name in STEMS], axis=-1)))
    return songs


def selection_score(model: dict[str, float], mix4: dict[str, float], select: str) -> float:
    """The validation figure `train` maximises (dB): the model's mean SDR ("mean") or its
    weakest stem's margin over mixture/4 ("weakest"). model, mix4: {stem: dB, "mean": dB}."""
    if select == "weakest":
        return min(model[stem] - mix4[stem] for stem in STEMS)
    return model["mean"]


def _save_keras(model: Any, path: Path) -> None:
    """Save atomically: Keras writes a temporary `.keras` beside `path`, then it is moved in place."""
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def train(config: TrainConfig, *, resume: bool = True, force: bool = False, log=print) -> Path:
    """Run (or resume) training; returns the model folder written."""
    import keras

    from tuiplayer.evaluation import MIX4_ROW, evaluate, summary
    from tuiplayer.nn.models import build_model
    from tuiplayer.nn.models.losses import TrainerLoss, with_group_loss
    from tuiplayer.separation.separator import Separator

    out, run_dir = Path(config.out), Path(config.run_dir)
    if (out / WEIGHTS_FILE).exists() and not force:
        raise BadInput(f"{out / WEIGHTS_FILE}: exists already (use --force to replace the model)")
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint, state_file, best_file = run_dir / "checkpoint.keras", run_dir / "state.json", run_dir / "best.keras"

    state: dict[str, Any] = {"epoch": 0, "train_s": 0.0, "best_sdr": None, "history": []}
    if resume and checkpoint.exists() and state_file.exists():
        state = json.loads(state_file.read_text())
        trainer = keras.saving.load_model(checkpoint)
        separator = next(layer for layer in trainer.layers if isinstance(layer, keras.Model))
        log(f"resuming {run_dir} at epoch {state['epoch']} ({state['train_s'] / 3600:.2f} h trained)")
    else:
        _maybe_mixed_precision()
        with _distribution_scope():
            if config.init:
                separator, state["prior"] = _initial_model(config)
                log(f"starting from {config.init} ({state['prior']['steps']} steps already)")
            else:
                separator = build_model(config.arch, **config.options)
            trainer = with_group_loss(separator, config.stem_weights)
            schedule = keras.optimizers.schedules.CosineDecay(
                config.learning_rate, decay_steps=config.steps, alpha=0.05
            )
            trainer.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0), loss=TrainerLoss())
    write_text(run_dir / "config.json", json.dumps(asdict(config), indent=2) + "\n", force=True)
    log(f"{config.arch}: {separator.count_params():,} parameters; {hardware()}")

    callbacks = []
    if _backend() == "tensorflow":  # TensorBoard needs TensorFlow's summary writer
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), update_freq="epoch"))
    progress = _progress_callback(log, config.steps_per_epoch)
    callbacks.append(progress)
    validation = _validation_songs(config)
    batches = _training_batches(config, state["epoch"])
    started = time.monotonic()
    budget_s = None if config.hours is None else config.hours * 3600

    for epoch in range(state["epoch"], config.epochs):
        if budget_s is not None and state["train_s"] >= budget_s:
            log(f"time budget of {config.hours} h reached after epoch {epoch}")
            break
        epoch_start = time.monotonic()
        progress.epoch_label = f"epoch {epoch + 1}/{config.epochs}"
        history = trainer.fit(
            _take(batches, config.steps_per_epoch), steps_per_epoch=config.steps_per_epoch,
            initial_epoch=epoch, epochs=epoch + 1, verbose=0, callbacks=callbacks,
        )
        state["train_s"] += time.monotonic() - epoch_start
        record: dict[str, Any] = {"epoch": epoch + 1, "step": (epoch + 1) * config.steps_per_epoch,
                                  "loss": float(history.history["loss"][-1]), "train_s": state["train_s"]}
        if not math.isfinite(record["loss"]):
            raise TrainingDiverged(f"the loss became {record['loss']} in epoch {epoch + 1} (a learning rate too "
                                   f"high for this model?); no model written, the last good checkpoint is in {run_dir}")
        if validation:
            separate = Separator(lambda x: np.asarray(separator.predict_on_batch(x)))
            tables = summary(evaluate(validation, {"model": separate}, oracle=False))
            record["val_sdr"] = table = tables["model"]
            score = selection_score(table, tables[MIX4_ROW], config.select)
            if state["best_sdr"] is None or score > state["best_sdr"]:
                state["best_sdr"], state["best_step"] = score, record["step"]
                _save_keras(separator, best_file)
        state["epoch"] = epoch + 1
        state["history"].append(record)
        _save_keras(trainer, checkpoint)
        write_text(state_file, json.dumps(state, indent=1) + "\n", force=True)
        _append_csv(run_dir / "log.csv", record)
        log(_describe(record))

    final = keras.saving.load_model(best_file) if best_file.exists() else separator
    folder = write_model_folder(final, config, state)
    log(f"wrote {folder} (trained {state['train_s'] / 3600:.2f} h, wall {(time.monotonic() - started) / 3600:.2f} h)")
    return folder


def _initial_model(config: TrainConfig) -> tuple[Any, dict[str, Any]]:
    """The separator of config.init (checked against its card) and what its card says of it."""
    import keras

    import tuiplayer.nn.models  # noqa: F401 - registers the custom layers
    from tuiplayer.modelstore import resolve, verify_weights

    card = resolve(config.init)
    if card.arch != config.arch:
        raise BadInput(f"--init {config.init} is a {card.arch} model, not {config.arch}")
    separator = keras.saving.load_model(verify_weights(card), compile=False)
    prior = {"model": card.name, "sha256": card.sha256, "steps": int(card.training.get("steps", 0)),
             "hours": float(card.training.get("hours", 0.0)), "data": card.training.get("data")}
    return separator, prior


PROGRESS_EVERY_S = 60.0
"""How often training says how far an epoch has got (an epoch takes many minutes on a CPU)."""


def _progress_callback(log, steps_per_epoch: int) -> Any:
    """A Keras callback that logs, at most every PROGRESS_EVERY_S, the step within the epoch,
    the loss so far, the time a step takes and when the epoch will end."""
    import keras

    class Progress(keras.callbacks.Callback):
        epoch_label = ""

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._start = self._said = time.monotonic()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            now = time.monotonic()
            if now - self._said < PROGRESS_EVERY_S or batch + 1 >= steps_per_epoch:
                return
            self._said = now
            step_s = (now - self._start) / (batch + 1)
            loss = f"loss {float(logs['loss']):.4f}, " if logs and "loss" in logs else ""
            left_min = step_s * (steps_per_epoch - batch - 1) / 60
            log(f"  {self.epoch_label}: step {batch + 1}/{steps_per_epoch}, {loss}{step_s:.1f} s a step "
                f"(the epoch ends in about {left_min:.0f} min)")

    return Progress()


def _take(batches: Iterator[Any], count: int) -> Iterator[Any]:
    for _ in range(count):
        yield next(batches)


def _describe(record: dict[str, Any]) -> str:
    text = f"epoch {record['epoch']} step {record['step']}: loss {record['loss']:.4f}"
    if "val_sdr" in record:
        text += " | val SDR " + " ".join(f"{k} {v:.2f}" for k, v in record["val_sdr"].items())
    return text + f" | {record['train_s'] / 60:.1f} min"


def _append_csv(path: Path, record: dict[str, Any]) -> None:
    flat = {k: v for k, v in record.items() if k != "val_sdr"}
    flat.update({f"val_{k}": v for k, v in record.get("val_sdr", {}).items()})
    new = not path.exists()
    with path.open("a", encoding="utf-8") as handle:
        if new:
            handle.write(",".join(flat) + "\n")
        handle.write(",".join(str(v) for v in flat.values()) + "\n")


def _distribution_scope() -> Any:
    """tf.distribute.MirroredStrategy's scope when TensorFlow sees several GPUs, else nothing."""
    import contextlib

    if _backend() == "tensorflow":
        import tensorflow as tf

        if len(tf.config.list_physical_devices("GPU")) > 1:
            return tf.distribute.MirroredStrategy().scope()
    return contextlib.nullcontext()


def _maybe_mixed_precision() -> None:
    """float16 compute on a GPU (the masks stay float32); the same float32 code path on CPU."""
    import keras

    if _gpu_name(_backend()):
        keras.mixed_precision.set_global_policy("mixed_float16")


def write_model_folder(separator: Any, config: TrainConfig, state: dict[str, Any]) -> Path:
    """Write model.keras and card.json into config.out, and name it in the models index."""
    from tuiplayer.data.real import provenance

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    _save_keras(separator, out / WEIGHTS_FILE)
    last = state["history"][-1] if state["history"] else {}
    prior = state.get("prior") or {"steps": 0, "hours": 0.0}
    card = {
        "name": out.name,
        "version": config.version,
        "arch": config.arch,
        "stems": list(STEMS),
        "signal": SIGNAL.as_dict(),
        "parameters": int(separator.count_params()),
        "sha256": file_sha256(out / WEIGHTS_FILE),
        "training": {
            "data": list(config.data),
            **({"real": provenance(Path(config.real), config.real_share)} if config.real else {}),
            # the weights' own steps (the epoch kept), and all that ran when more did
            "steps": prior["steps"] + int(state.get("best_step") or last.get("step", 0)),
            **({"steps_run": prior["steps"] + int(last["step"])}
               if state.get("best_step") and state["best_step"] != last.get("step") else {}),
            "batch_size": config.batch_size,
            "hours": round(prior["hours"] + state["train_s"] / 3600, 3),
            "hardware": hardware(),
            "backend": _backend(),
            "options": config.options,
            **({"stem_weights": dict(zip(STEMS, config.stem_weights, strict=True))} if config.stem_weights else {}),
            "selection": config.select,
            "final_loss": last.get("loss"),
            "best_validation_sdr": state.get("best_sdr"),
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            **({"continued_from": prior} if "model" in prior else {}),
        },
        "metrics": {},
    }
    old_card = out / CARD_FILE
    if old_card.exists():  # keep nothing stale: metrics are measured again for new weights
        shutil.copy(old_card, out / f".{CARD_FILE}.previous")
    write_text(old_card, json.dumps(card, indent=2) + "\n", force=True)
    _name_in_index(out)
    return out


def _name_in_index(folder: Path) -> None:
    index_file = folder.parent / INDEX_FILE
    index = {"default": None, "ab": None}
    if index_file.exists():
        index.update(json.loads(index_file.read_text()))
    if index["default"] is None:
        index["default"] = folder.name
    elif index["ab"] is None and index["default"] != folder.name:
        index["ab"] = folder.name
    write_text(index_file, json.dumps(index, indent=2) + "\n", force=True)


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """KEY=VALUE architecture options → a dict (values parsed as JSON, else kept as text)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"option {pair!r} is not KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options
