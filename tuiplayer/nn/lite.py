"""The shipped models on the CPU through TensorFlow Lite's runtime (LiteRT, `ai-edge-litert`).

TensorFlow stays the training runtime and the GPU path (DESIGN.md §9); the player runs each
model from a `model.tflite` made from its `model.keras` at ship time (`export`, which needs
TensorFlow; `tuiplayer models tflite NAME`). Measured on this 2-core machine, from a fresh
process to the hybrid's first masks: LiteRT 0.34-0.41 s (import 0.01 s, interpreter 0.11 s,
first call 0.15 s; 255 MB), TensorFlow 8.2-8.9 s (import 4.4-4.7 s, load 2.4-2.9 s, first
eager call 0.9-1.2 s; 990 MB). A later block: 0.14 s on one thread (TensorFlow: 0.13 s).

The file holds the model traced for one block, (1, n_frames, n_bins, channels) → (1, n_frames,
n_bins, channels, n_stems), with its weights as constants and TensorFlow Lite's builtin
operators only. The card records its sha256 and how far its masks were from the Keras model's
on a test block (`export` refuses more than MAX_DIFFERENCE); `load` checks the checksum.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuiplayer.config import SIGNAL
from tuiplayer.errors import ModelError
from tuiplayer.modelstore import CARD_FILE, ModelCard, file_sha256, read_card

LITE_FILE = "model.tflite"
MAX_DIFFERENCE = 1e-4
"""The largest |LiteRT − Keras| a mask may differ by for the export to be kept."""
INPUT_SHAPE = (1, SIGNAL.n_frames, SIGNAL.n_bins, SIGNAL.channels)


def lite_entry(card: ModelCard) -> dict[str, Any] | None:
    """The card's record of its LiteRT file, or None when it has none made from these weights."""
    entry = card.runtimes.get("tflite")
    return entry if isinstance(entry, dict) and entry.get("from_sha256") == card.sha256 else None


@dataclass
class LiteRunner:
    """A model in a LiteRT interpreter: runner(magnitudes (batch, n_frames, n_bins, 2)) →
    masks (batch, n_frames, n_bins, 2, n_stems), one block per interpreter call."""

    card: ModelCard
    interpreter: Any
    _input: int
    _output: int

    def __call__(self, magnitudes: np.ndarray) -> np.ndarray:
        if magnitudes.ndim != 4 or magnitudes.shape[1:] != INPUT_SHAPE[1:]:
            raise ValueError(f"model input must be (batch, {INPUT_SHAPE[1:]}). Received shape {magnitudes.shape}")
        masks = []
        for block in np.ascontiguousarray(magnitudes, dtype=np.float32):
            self.interpreter.set_tensor(self._input, block[None])
            self.interpreter.invoke()
            masks.append(self.interpreter.get_tensor(self._output)[0])
        return np.stack(masks)


def available(card: ModelCard) -> bool:
    """Whether the card has a LiteRT file recorded and the runtime is installed."""
    if lite_entry(card) is None or not (card.folder / LITE_FILE).is_file():
        return False
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def load(card: ModelCard, threads: int = 1) -> LiteRunner:
    """The card's model.tflite in an interpreter on `threads` threads; ModelError (one line)
    when it is missing, does not match its card, or cannot be read."""
    entry = lite_entry(card)
    path = card.folder / LITE_FILE
    if entry is None or not path.is_file():
        raise ModelError(f"{card.folder}: no {LITE_FILE} for this model (tuiplayer models tflite {card.name})")
    if file_sha256(path) != entry.get("sha256"):
        raise ModelError(f"{path}: checksum does not match its card (corrupt or replaced)")
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        raise ModelError(f"{path}: cannot load the model ({error})") from None
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or tuple(inputs[0]["shape"]) != INPUT_SHAPE or len(outputs) != 1:
        raise ModelError(f"{path}: model takes {[tuple(i['shape']) for i in inputs]}, expected {INPUT_SHAPE}")
    return LiteRunner(card, interpreter, inputs[0]["index"], outputs[0]["index"])


def convert(model: Any) -> bytes:
    """A Keras model as a LiteRT flatbuffer: traced for one block, weights as constants,
    builtin operators only (no TensorFlow ops inside, so LiteRT alone runs it)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    @tf.function(input_signature=[tf.TensorSpec(INPUT_SHAPE, tf.float32, name="magnitudes")])
    def masks(magnitudes: Any) -> Any:
        return {"masks": model(magnitudes, training=False)}

    frozen = convert_variables_to_constants_v2(masks.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def test_blocks() -> np.ndarray:
    """Magnitudes the export is checked on: two blocks of the demo song (real music) and one
    of noise, (3, n_frames, n_bins, channels) float32."""
    from tuiplayer.assets import DEMO_SONG
    from tuiplayer.audio.io import load as load_audio
    from tuiplayer.dsp.stft import Stft

    audio = load_audio(DEMO_SONG).samples
    spec = Stft().forward(audio)
    blocks = [np.abs(spec[start : start + SIGNAL.n_frames, : SIGNAL.n_bins]) for start in (0, 200)]
    noise = np.random.default_rng(0).uniform(0, 2, INPUT_SHAPE[1:])
    return np.stack([*blocks, noise]).astype(np.float32)


def export(card: ModelCard, *, force: bool = False) -> ModelCard:
    """Write the card's model.tflite (atomically) from its model.keras, check its masks against
    the Keras model's on `test_blocks` (ModelError beyond MAX_DIFFERENCE), and record both on
    the card. Needs TensorFlow."""
    from tuiplayer.files import atomic_write, write_text
    from tuiplayer.nn import runtime

    if card.is_ensemble:
        raise ModelError(f"{card.name} is an ensemble: it has no weights of its own (export its members: "
                         + ", ".join(member["model"] for member in card.members) + ")")
    path = card.folder / LITE_FILE
    if path.exists() and not force:
        raise ModelError(f"{path}: exists already (use --force to overwrite)")
    keras_model = runtime.load(card).model
    blob = convert(keras_model)
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=blob, num_threads=1)
    interpreter.allocate_tensors()
    runner = LiteRunner(card, interpreter, interpreter.get_input_details()[0]["index"],
                        interpreter.get_output_details()[0]["index"])
    blocks = test_blocks()
    reference = np.asarray(keras_model(blocks, training=False))
    difference = float(np.max(np.abs(runner(blocks) - reference)))
    if not difference <= MAX_DIFFERENCE:
        raise ModelError(f"{card.name}: LiteRT masks differ from the Keras model's by {difference:.2e} "
                         f"(more than {MAX_DIFFERENCE:g}); not written")
    atomic_write(path, lambda handle: handle.write(blob), force=True)
    import tensorflow as tf

    card_path = card.folder / CARD_FILE
    raw = json.loads(card_path.read_text(encoding="utf-8"))
    raw.setdefault("runtimes", {})["tflite"] = {
        "file": LITE_FILE, "sha256": file_sha256(path), "from_sha256": card.sha256,
        "converter": f"tensorflow {tf.__version__}: frozen concrete function, batch 1, TFLITE_BUILTINS",
        "max_abs_difference": difference,
        "checked_on": "2 blocks of the demo song and 1 of uniform noise, against the Keras model",
    }
    write_text(card_path, json.dumps(raw, indent=2) + "\n", force=True)
    return read_card(card.folder)
