"""Running a shipped model: the only place the player touches TensorFlow.

`load(card)` checks the weights against the card's checksum, loads `model.keras` under
TensorFlow, and returns a `Runner`: a callable that takes magnitude blocks and returns masks
(the `separation.separator.Predict` contract). TensorFlow is imported on the first call here,
never at import time, so the player's window appears before TensorFlow has loaded.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuiplayer.config import SIGNAL
from tuiplayer.errors import ModelError
from tuiplayer.memory import freeze_long_lived
from tuiplayer.modelstore import ModelCard, verify_weights
from tuiplayer.nn.stages import Stage, run_stages, split_model

_CONFIGURED = threading.Lock()
_threads_set: tuple[int, int] | None = None


def configure_threads(intra_op: int, inter_op: int = 1) -> None:
    """Size TensorFlow's thread pools (must run before TensorFlow starts its runtime).

    On a 2-core machine the player keeps one core for audio and the UI (DESIGN.md §4), while
    batch jobs (`separate`, `eval`, `bench`) use every core. A later call with other numbers
    is ignored: TensorFlow fixes its pools once.
    """
    global _threads_set
    with _CONFIGURED:
        if _threads_set is not None:
            return
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op)
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
        except RuntimeError:  # already initialised by someone else: keep its pools
            pass
        _threads_set = (intra_op, inter_op)


@dataclass
class Runner:
    """A loaded model. runner(magnitudes (batch, n_frames, n_bins, 2)) → masks (batch, …, 2, n_stems).

    The first call runs eagerly; later ones run traced graphs. Tracing the hybrid costs
    ~2.3 s on top of its first call (one thread, beside a training job: eager first call
    0.95 s, traced first call 2.54 s, later traced calls 0.25 s), so the player's first stems, the block at
    the playhead, come that much sooner; the trace happens on the second call instead, while
    the first block's stems play. The objects the trace leaves live as long as the model, and
    are frozen out of the garbage collector's sight after it (memory.freeze_long_lived).

    Traced calls run the model in `stages` (nn.stages.split_model, each stage's model a
    traced graph), each under `step()` when `call_in_stages` is given one: where a seek's
    call can go first.
    """

    card: ModelCard
    model: Any
    stages: list[Stage]
    _calls: int = 0

    def __call__(self, magnitudes: np.ndarray) -> np.ndarray:
        return self.call_in_stages(magnitudes, contextlib.nullcontext)

    def call_in_stages(self, magnitudes: np.ndarray, step: Callable[[], ContextManager[Any]]) -> np.ndarray:
        """The masks for magnitudes, each stage of the model run inside a `with step():`."""
        expected = (SIGNAL.n_frames, SIGNAL.n_bins, SIGNAL.channels)
        if magnitudes.ndim != 4 or magnitudes.shape[1:] != expected:
            raise ValueError(f"model input must be (batch, {expected}). Received shape {magnitudes.shape}")
        magnitudes = np.ascontiguousarray(magnitudes, dtype=np.float32)
        self._calls += 1
        if self._calls == 1:
            with step():
                return np.asarray(self.model(magnitudes, training=False))

        def call(stage: Stage, inputs: list[Any]) -> Any:
            with step():
                return stage.model(inputs)

        masks = np.asarray(run_stages(self.stages, magnitudes, call))
        if self._calls == 2:  # the trace is done
            freeze_long_lived()
        return masks


PLAYER_STAGES = 3
"""Parts the player's traced model calls are cut into (see Runner); batch jobs run one graph."""


def _traced(stage: Stage) -> Stage:
    """The stage with its model as a graph, [tensors] → [tensors], for any batch size (no
    retracing when the last batch is smaller)."""
    import tensorflow as tf

    model = stage.model
    specs = [tf.TensorSpec(tensor.shape, tensor.dtype) for tensor in model.inputs]

    @tf.function(input_signature=[specs])
    def run(values: list[Any]) -> list[Any]:
        # (Keras keeps a one-tensor input as that tensor, not a list of one)
        return model(values if len(values) > 1 else values[0], training=False)

    return Stage(run, stage.takes, stage.gives)


PLAYER_THREADS = (1, 1)
"""TensorFlow's (intra-op, inter-op) threads while playing: one core for separation, the other
left to the sound process and the screen (DESIGN.md §4). Measured, the hybrid at batch 1 on
this 2-core machine: a call takes 0.135 s at (1, 1) and 0.091 s at (1, 2), but at (1, 2) the
end-to-end test's sound process underflowed in 2 of 5 runs (0 of 4 at (1, 1), the same code
otherwise). Two calls at once at (1, 1) take as long as one after the other (one executor
thread interleaves them), hence separation.engine.ModelGate."""


def load(card: ModelCard, threads: tuple[int, int] | None = None, stages: int = 1) -> Runner:
    """Load the model a card describes; ModelError (one line) if it is missing, corrupt or foreign.

    threads: TensorFlow's (intra-op, inter-op) threads; default every core for one op at a
    time. stages: parts a traced call is cut into (see Runner).
    """
    weights = verify_weights(card)
    configure_threads(*(threads or (max(1, (os.cpu_count() or 1)), 1)))
    import keras

    import tuiplayer.nn.models  # noqa: F401 - registers the custom layers with Keras

    try:
        model = keras.saving.load_model(weights, compile=False)
    except Exception as error:  # Keras raises many kinds for a damaged archive
        raise ModelError(f"{weights}: cannot load the model ({type(error).__name__}: {error})") from None
    expected_in = (None, SIGNAL.n_frames, SIGNAL.n_bins, SIGNAL.channels)
    if tuple(model.input_shape) != expected_in:
        raise ModelError(f"{weights}: model takes {model.input_shape}, expected {expected_in}")
    return Runner(card, model, [_traced(stage) for stage in split_model(model, stages)])


def load_for_player(card: ModelCard) -> Runner:
    """`load` as the player runs a model: PLAYER_THREADS, in PLAYER_STAGES."""
    return load(card, threads=PLAYER_THREADS, stages=PLAYER_STAGES)
