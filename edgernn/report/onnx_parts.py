"""Where an ONNX graph's bytes are: its stored tensors split into embedding, recurrent, head.

The ONNX twin of ``edgernn.models.size.size_by_part``, for any graph (edgernn's fp32, int8 or
4-bit ones, or a foreign file). A stored tensor (initializer or ``Constant``) belongs to the
node that finally uses it: the chain of nodes that only compute on constants (``Cast`` +
``Mul`` of weight-only int8, ``DequantizeLinear``, ``Transpose``, ``Reshape``) is followed to
the first node that also reads an activation. There:

- ``Gather`` / ``GatherBlockQuantized`` reading the tensor as its table -> embedding;
- ``LSTM`` / ``GRU`` / ``RNN`` / ``DynamicQuantizeLSTM`` -> recurrent;
- a node fed by the looked-up rows (the int8 table's ``DequantizeLinear`` scale, a low-rank
  embedding's projection ``MatMul`` and the scales and bias right after it) -> embedding;
- everything else (output layers, attention, bridges) -> head.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict

import onnx
from onnx import TensorProto, helper

from edgernn.report.rows import PARTS

GATHERS = {"Gather", "GatherBlockQuantized"}
RECURRENT = {"LSTM", "GRU", "RNN", "DynamicQuantizeLSTM"}
MATMULS = {
    "MatMul",
    "Gemm",
    "MatMulInteger",
    "DynamicQuantizeMatMul",
    "MatMulNBits",
    "FusedMatMul",
    "QLinearMatMul",
}
# Nodes the looked-up rows pass through still being the embedding: (de)quantized, scaled,
# reshaped. Any other node (LayerNorm, Concat with a context, a reduction) ends it.
FLOWS = {
    "Add",
    "Cast",
    "DequantizeLinear",
    "Div",
    "DynamicQuantizeLinear",
    "Flatten",
    "Identity",
    "Mul",
    "QuantizeLinear",
    "Reshape",
    "Squeeze",
    "Transpose",
    "Unsqueeze",
}
# Their second input is a shape or axes, which says nothing about whose bytes flow through.
SHAPES = {"Reshape", "Squeeze", "Unsqueeze"}
RAW, PROJECTED = "rows", "projected rows"  # the table's rows, then after one projection
_SUB_BYTE = {"UINT4": 4, "INT4": 4, "FLOAT4E2M1": 4, "UINT2": 2, "INT2": 2}
BITS = {
    getattr(TensorProto, name): bits
    for name, bits in _SUB_BYTE.items()
    if hasattr(TensorProto, name)
}


def onnx_size_by_part(model: str | os.PathLike | onnx.ModelProto) -> dict[str, int]:
    """Stored bytes of ``model``'s tensors as ``{"embedding", "recurrent", "head"}``.

    External data is not read: its size is the length the graph records for it.

    Example::

        onnx_size_by_part("bundle/model.int8.onnx")   # {"embedding": 1280, ...}
    """
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(os.fspath(model), load_external_data=False)
    graph = model.graph
    sizes = _stored_tensors(graph)
    constant = _constant_values(graph, set(sizes))
    rows = _embedding_rows(graph, constant)
    consumers = defaultdict(list)
    for node in graph.node:
        for slot, name in enumerate(node.input):
            consumers[name].append((node, slot))
    parts = dict.fromkeys(PARTS, 0)
    for name, size in sizes.items():
        uses = _final_uses(name, consumers, constant)
        found = {_part(node, slot, rows) for node, slot in uses}
        parts[next((part for part in PARTS if part in found), "head")] += size
    return parts


def _stored_tensors(graph: onnx.GraphProto) -> dict[str, int]:
    """Value name -> stored bytes, for the initializers and ``Constant`` nodes' tensors."""
    sizes = {tensor.name: tensor_bytes(tensor) for tensor in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    sizes[node.output[0]] = tensor_bytes(attribute.t)
    return sizes


def tensor_bytes(tensor: onnx.TensorProto) -> int:
    """The bytes ``tensor`` takes in the file (4-bit types packed two to a byte)."""
    if tensor.data_location == TensorProto.EXTERNAL:
        recorded = {entry.key: entry.value for entry in tensor.external_data}
        if "length" in recorded:
            return int(recorded["length"])
    elif tensor.raw_data:
        return len(tensor.raw_data)
    if tensor.data_type == TensorProto.STRING:
        return sum(len(value) for value in tensor.string_data)
    count = math.prod(tensor.dims)
    if tensor.data_type in BITS:
        return math.ceil(count * BITS[tensor.data_type] / 8)
    return count * helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize


def _constant_values(graph: onnx.GraphProto, stored: set[str]) -> set[str]:
    """Every value computed from stored tensors alone (nodes come in topological order)."""
    constant = set(stored)
    for node in graph.node:
        inputs = [name for name in node.input if name]
        if node.op_type == "Constant" or (inputs and all(name in constant for name in inputs)):
            constant.update(node.output)
    return constant


def _embedding_rows(graph: onnx.GraphProto, constant: set[str]) -> dict[str, str]:
    """Values that are an embedding's looked-up rows: ``RAW``, or ``PROJECTED`` after a
    constant-weight matmul (the r x E projection of a low-rank table)."""
    rows: dict[str, str] = {}
    for node in graph.node:
        inputs = [name for name in node.input if name]
        if set(inputs) <= constant:
            continue
        levels = {rows.get(name) for name in inputs}
        if node.op_type in GATHERS and inputs[0] in constant:
            level = RAW
        elif node.op_type in MATMULS and levels == {RAW, None} and constant & set(inputs):
            level = PROJECTED
        elif node.op_type in FLOWS and levels - {None}:
            level = PROJECTED if PROJECTED in levels else RAW
        else:
            continue
        rows.update(dict.fromkeys(node.output, level))
    return rows


def _final_uses(name: str, consumers: dict, constant: set[str]) -> list[tuple]:
    """``(node, input slot)`` of each node that uses ``name`` with an activation: the end of
    each chain of constant-only nodes (dequantize, transpose) that starts at ``name``."""
    uses, pending, visited = [], [name], {name}
    while pending:
        for node, slot in consumers.get(pending.pop(), []):
            if not node.output or node.output[0] not in constant:
                uses.append((node, slot))
                continue
            fresh = [output for output in node.output if output not in visited]
            visited.update(fresh)
            pending += fresh
    return uses


def _part(node: onnx.NodeProto, slot: int, rows: dict[str, str]) -> str:
    if node.op_type in GATHERS and slot != 1:  # the table and its scales, not the indices
        return "embedding"
    if node.op_type in RECURRENT:
        return "recurrent"
    if node.op_type in SHAPES and slot == 1:
        return "head"
    levels = {rows.get(name) for name in node.input}
    if node.op_type in MATMULS and PROJECTED in levels:  # a second matmul: a layer of its own
        return "head"
    return "embedding" if levels - {None} else "head"
