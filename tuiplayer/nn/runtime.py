"""Running a shipped model: what the separation imports to run one (`Predict`).

`load(card)` checks the weights against the card's checksum, loads `model.keras` under
TensorFlow (imported on the first call here, never at import time) and returns a `Runner`
(`separate`, `eval`, `bench`). `load_for_player(card)` is what the player's separation process
calls: the same model through LiteRT (nn.lite) where the model folder has its model.tflite.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuiplayer.config import SIGNAL
from tuiplayer.errors import ModelError
from tuiplayer.memory import freeze_long_lived
from tuiplayer.modelstore import ModelCard, verify_weights
from tuiplayer.separation.separator import Predict

_CONFIGURED = threading.Lock()
_threads_set: tuple[int, int] | None = None


@contextlib.contextmanager
def _native_stderr_quiet() -> Iterator[None]:
    """While TensorFlow is imported: what native code writes to file descriptor 2 is dropped
    (its logging writes "All log messages before absl::InitializeLog()…", oneDNN and CUDA
    notes there whatever TF_CPP_MIN_LOG_LEVEL says). Kept with TUIPLAYER_DEBUG set."""
    if os.environ.get("TUIPLAYER_DEBUG"):
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


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
        with _native_stderr_quiet():
            import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op)
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
        except RuntimeError:  # already initialised by someone else: keep its pools
            pass
        _threads_set = (intra_op, inter_op)


@dataclass
class Runner:
    """A loaded Keras model. runner(magnitudes (batch, n_frames, n_bins, 2)) → masks (batch, …, 2, n_stems).

    The first call runs eagerly; later ones run a traced graph (tracing the hybrid costs ~2.3 s
    on top of its first call, which a batch job pays once)."""

    card: ModelCard
    model: Any
    _graph: Any = None

    def __call__(self, magnitudes: np.ndarray) -> np.ndarray:
        expected = (SIGNAL.n_frames, SIGNAL.n_bins, SIGNAL.channels)
        if magnitudes.ndim != 4 or magnitudes.shape[1:] != expected:
            raise ValueError(f"model input must be (batch, {expected}). Received shape {magnitudes.shape}")
        magnitudes = np.ascontiguousarray(magnitudes, dtype=np.float32)
        if self._graph is None:
            self._graph = _traced(self.model)
            return np.asarray(self.model(magnitudes, training=False))
        masks = np.asarray(self._graph(magnitudes))
        freeze_long_lived()  # the trace's objects live as long as the model
        return masks


def _traced(model: Any) -> Any:
    """The model as a graph for any batch size (no retracing when the last batch is smaller)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec(model.inputs[0].shape, model.inputs[0].dtype)])
    def run(magnitudes: Any) -> Any:
        return model(magnitudes, training=False)

    return run


def load(card: ModelCard, threads: tuple[int, int] | None = None) -> Predict:
    """Load the model a card describes; ModelError (one line) if it is missing, corrupt or foreign.
    An ensemble loads its members (tuiplayer.nn.ensemble).

    threads: TensorFlow's (intra-op, inter-op) threads; default every core for one op at a time.
    """
    if card.is_ensemble:
        return _ensemble(card, lambda member: load(member, threads))
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
    return Runner(card, model)


PLAYER_THREADS = 1
"""Threads the player's separation gives a model: one core of two, the other left to the
screen and the sound process (DESIGN.md §4). With TensorFlow, (1, 2) threads let the
end-to-end test's sound process underflow in 2 of 5 runs (0 of 4 at (1, 1))."""


def load_for_player(card: ModelCard) -> Predict:
    """The model as the player's separation process runs it: from its model.tflite through
    LiteRT where it has one (a start in 0.4 s instead of 8 s, nn.lite), else through
    TensorFlow; on PLAYER_THREADS either way. Verified against the card's checksums."""
    from tuiplayer.nn import lite

    if card.is_ensemble:
        return _ensemble(card, load_for_player)
    verify_weights(card)
    if lite.available(card):
        return lite.load(card, threads=PLAYER_THREADS)
    return load(card, threads=(PLAYER_THREADS, 1))


def _ensemble(card: ModelCard, load_member: Any) -> Predict:
    """An ensemble card's members, each loaded by load_member(card), as one Predict."""
    from tuiplayer.modelstore import ensemble_members
    from tuiplayer.nn.ensemble import Ensemble

    return Ensemble(card, [(load_member(member_card), member["stems"], member["input"])
                           for member_card, member in ensemble_members(card)])
