"""A model cut into consecutive parts, so that a long model call can give way between them.

The player's separation worker runs one model call at a time on all of TensorFlow's threads;
a seek's call then waits only for the part under way, not the whole call before it
(separation.engine.ModelGate). Pure Keras 3: the parts are functional models over the same
layers and weights (no copies), cut where the graph's tensors are handed on.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

INPUT, OUTPUT = "input", "output"
"""Names of the model's own input and output among the tensors the parts hand on."""


@dataclass(frozen=True)
class Stage:
    """One part: `model` takes the tensors named `takes` (a list, in that order) and returns
    those named `gives` (a list)."""

    model: Any
    takes: tuple[str, ...]
    gives: tuple[str, ...]


def split_model(model: Any, parts: int) -> list[Stage]:
    """`model` (functional, one input, one output) as up to `parts` stages run in order.

    Each stage's operations are a consecutive run of the model's (cut at equal numbers of
    operations); it takes the tensors made before it that it uses, and gives those it makes
    that later stages use (the last gives OUTPUT). One stage, the whole model, when parts < 2
    or the graph cannot be cut this way (a layer called more than once).
    """
    import keras

    whole = [Stage(model, (INPUT,), (OUTPUT,))]
    operations = [op for op in model.operations if not isinstance(op, keras.layers.InputLayer)]
    if parts < 2 or len(model.inputs) != 1 or len(model.outputs) != 1 \
            or any(len(op._inbound_nodes) != 1 for op in operations):
        return whole
    position = {id(op): index for index, op in enumerate(operations)}
    model_input, model_output = model.inputs[0], model.outputs[0]

    def name(tensor: Any) -> str:
        return INPUT if tensor is model_input else OUTPUT if tensor is model_output else f"t{id(tensor)}"

    def made_at(tensor: Any) -> int:
        """Index of the operation that makes `tensor` (-1: the model's input)."""
        return -1 if tensor is model_input else position[id(tensor._keras_history.operation)]

    tensors: dict[str, Any] = {}  # every tensor an operation takes, in graph order, and the output
    uses: dict[str, list[int]] = {}  # … and the operations that take it
    for index, op in enumerate(operations):
        for tensor in op._inbound_nodes[0].input_tensors:
            tensors[name(tensor)] = tensor
            uses.setdefault(name(tensor), []).append(index)
    tensors[OUTPUT] = model_output
    uses[OUTPUT] = [len(operations)]

    def width(cut: int) -> int:
        """How many tensors a cut before operation `cut` hands on."""
        return sum(made_at(t) < cut <= max(uses[key]) for key, t in tensors.items())

    # near each of the equal-count places, the narrowest cut (it breaks the fewest branches
    # that TensorFlow would run side by side)
    reach = max(1, len(operations) // (4 * parts))
    targets = [round(len(operations) * k / parts) for k in range(1, parts)]
    cuts = sorted({0, len(operations), *(min(range(max(1, t - reach), min(len(operations), t + reach + 1)),
                                             key=lambda c, t=t: (width(c), abs(c - t))) for t in targets)})
    stages = []
    for start, stop in itertools.pairwise(cuts):
        takes = [key for key, t in tensors.items() if made_at(t) < start and any(start <= u < stop for u in uses[key])]
        gives = [key for key, t in tensors.items() if start <= made_at(t) < stop and max(uses[key]) >= stop]
        if not gives:
            return whole
        stages.append(Stage(keras.Model([tensors[k] for k in takes], [tensors[k] for k in gives],
                                        name=f"{model.name}_part{len(stages) + 1}"), tuple(takes), tuple(gives)))
    return stages


def run_stages(stages: list[Stage], magnitudes: Any, call: Callable[[Stage, list[Any]], Any]) -> Any:
    """The model's output for `magnitudes`, stage by stage: call(stage, inputs) → its outputs
    (a list, or one tensor)."""
    values = {INPUT: magnitudes}
    for stage in stages:
        outputs = call(stage, [values[key] for key in stage.takes])
        values.update(zip(stage.gives, outputs if isinstance(outputs, list | tuple) else [outputs], strict=True))
    return values[OUTPUT]
