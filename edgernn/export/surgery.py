"""Derive the full-sequence graph from the streaming step graph (one trace per model).

For a streamable model the full graph *is* the step graph started from a zero state, so it
is made from the step graph's ONNX instead of being traced again: the state inputs become
zeros shaped from the batch, the state outputs and whatever only fed them are dropped. This
halves the export time (tracing dominates it) and makes "streaming equals full sequence"
true by construction; the parity check still compares the result with PyTorch.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def zero_state_graph(step: onnx.ModelProto, states: list[dict]) -> onnx.ModelProto:
    """The step graph with every state input fixed at zero and every state output removed.

    Args:
        step: the checked step graph (inputs ``inputs``, ``lengths`` and the states).
        states: the step graph's state tensors (``input``, ``output``, ``shape``).

    Returns:
        A graph with inputs ``inputs``, ``lengths`` and the step graph's first output.

    Example::

        full = zero_state_graph(step_proto, step_graph.states)
    """
    model = onnx.ModelProto.FromString(step.SerializeToString())
    graph = model.graph
    inputs = {state["input"] for state in states}
    outputs = {state["output"] for state in states}
    zero = helper.make_tensor("zero", onnx.TensorProto.FLOAT, [1], [0.0])
    nodes = [helper.make_node("Shape", ["inputs"], ["zero_state_batch"], start=0, end=1)]
    for state in states:  # each state (layers or 1, batch, width) gets zeros of its own shape
        name, (first, _, last) = state["input"], state["shape"]
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.array([first], np.int64), f"{name}_zero_first"),
                numpy_helper.from_array(np.array([last], np.int64), f"{name}_zero_last"),
            ]
        )
        dims = [f"{name}_zero_first", "zero_state_batch", f"{name}_zero_last"]
        nodes += [
            helper.make_node("Concat", dims, [f"{name}_zero_dims"], axis=0),
            helper.make_node("ConstantOfShape", [f"{name}_zero_dims"], [name], value=zero),
        ]
    kept_inputs = [value for value in graph.input if value.name not in inputs]
    kept_outputs = [value for value in graph.output if value.name not in outputs]
    _replace(graph.input, kept_inputs)
    _replace(graph.output, kept_outputs)
    _replace(graph.node, _live(nodes + list(graph.node), {v.name for v in kept_outputs}))
    used = {name for node in graph.node for name in node.input}
    _replace(graph.initializer, [t for t in graph.initializer if t.name in used])
    return model


def _live(nodes: list[onnx.NodeProto], needed: set[str]) -> list[onnx.NodeProto]:
    # Walk back from the outputs; a node stays if any of its outputs is still needed.
    kept = []
    for node in reversed(nodes):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(node.input)
    return kept[::-1]


def _replace(field, items: list) -> None:
    copies = [type(item).FromString(item.SerializeToString()) for item in items]
    del field[:]
    field.extend(copies)
