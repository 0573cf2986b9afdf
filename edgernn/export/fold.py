"""Weights as ONNX Runtime's quantizer needs them: plain initializers, one LSTM per W and R.

``quantize_dynamic`` quantizes a weight only when it is an *initializer*; a weight computed
by nodes from constants is left float, so its LSTM stays an fp32 ``LSTM`` (and a GRU's
weight-only path found no array to read). Graphs exported without constant folding hold
such weights: torch's dynamo exporter with ``optimize=False`` (the default before torch 2.7
when no file is given) slices and scales the parameters into the ONNX gate order
(``Slice``/``Mul``/``Concat``/``Unsqueeze``, with slice ends read off a ``Shape``), the
TorchScript one with ``do_constant_folding=False`` leaves ``Constant``/``Slice``/``Concat``
chains, and by default routes a module called twice through ``Identity`` nodes.

``fold_weights`` stores them with onnxscript's constant folder (the one the dynamo exporter
runs by default), its shape inference on so that a ``Shape`` whose sliced dims are static
becomes a constant, then lifts ``Constant`` nodes into initializers (an onnx_ir pass; the
same graph, in the form ORT's quantizer reads). Written here is only the choice of nodes:
those that may compute a weight from stored float tensors are folded whatever their size
(onnxscript skips inputs over 8192 elements by default, i.e. any real LSTM); others are not
folded, though onnxscript still simplifies what it can prove (a static ``Shape``, an
``Identity``). A graph that needs none of it (every graph edgernn exports, default torch
exports) is returned untouched.

``unshare_lstm_weights`` works around ORT's LSTM quantizer, which edits a shared W/R
initializer in place: with per-channel scales the second LSTM reading it stays fp32, and
with per-tensor scales it transposes the already transposed int8 copy again (ORT 1.32,
measured: outputs off by half their range).
"""

from __future__ import annotations

import onnx

from edgernn.errors import EdgeRNNError

# The weight inputs ORT quantizes (or edgernn stores int8, for GRU/RNN): W, R and B of a
# recurrent node, the matrix of a MatMul/Gemm/Conv, the table of an embedding Gather.
WEIGHT_INPUTS = {
    "LSTM": (1, 2, 3),
    "GRU": (1, 2, 3),
    "RNN": (1, 2, 3),
    "MatMul": (1,),
    "Gemm": (1, 2),
    "Conv": (1, 2),
    "Gather": (0,),
}
# Folding these would freeze one draw into the file.
_RANDOM = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli"}
_RANDOM |= {"Multinomial"}
KEEP_FP32 = "export without int8 (--no-int8, ExportConfig(int8=False)) to keep the fp32 graph"


def fold_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with every weight computed from constants stored as an initializer.

    Returns ``model`` itself when no weight needs it, a folded copy otherwise.

    Raises:
        EdgeRNNError: the constant folder failed on the graph.
    """
    targets = _fold_targets(model.graph)
    if not targets:
        return model
    from onnxscript import ir, optimizer

    graph = ir.serde.deserialize_model(model)
    try:
        # Forced (True) for the weights' nodes, whatever their size; no other node (False).
        optimizer.fold_constants(
            graph,
            onnx_shape_inference=True,
            should_fold=lambda node: node.outputs[0].name in targets,
        )
        ir.passes.common.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0)(
            graph
        )
        ir.passes.common.RemoveUnusedNodesPass()(graph)
    except Exception as error:  # the folder evaluates arbitrary ops; any failure is one line
        raise EdgeRNNError(
            f"int8: could not fold the graph's constant weight computations "
            f"({one_line(error)}); {KEEP_FP32}"
        ) from None
    return ir.serde.serialize_model(graph)


def _fold_targets(graph: onnx.GraphProto) -> set[str]:
    """First outputs of the nodes that may compute a weight from stored float tensors."""
    maybe = _maybe_constant(graph)
    producers = {name: node for node in graph.node for name in node.output}
    floats = {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    targets: set[str] = set()
    for node in graph.node:
        for slot in WEIGHT_INPUTS.get(node.op_type, ()) if _plain(node) else ():
            if slot < len(node.input) and node.input[slot] in producers:
                cone = _cone(node.input[slot], producers, maybe)
                # A weight from parameters, not shape arithmetic (Gather of a Shape).
                if any(_reads_float(producers[name], floats) for name in cone):
                    targets |= cone
    return targets


def _maybe_constant(graph: onnx.GraphProto) -> set[str]:
    # Values that may be constant: stored tensors (an initializer that is also a graph input
    # is a default the caller may override), Shape/Size outputs (constant when the dims they
    # read are static, which only the folder's shape inference knows) and what plain nodes
    # compute from those alone. Graphs are topologically sorted: one pass sees producers first.
    maybe = {t.name for t in graph.initializer} - {value.name for value in graph.input}
    for node in graph.node:
        reads = node.op_type in ("Shape", "Size") or all(
            not name or name in maybe for name in node.input
        )
        if _plain(node) and reads:
            maybe.update(node.output)
    return maybe


def _plain(node: onnx.NodeProto) -> bool:
    # A standard op without subgraphs and without randomness: safe to evaluate once.
    graphs = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    standard = node.domain in ("", "ai.onnx") and node.op_type not in _RANDOM
    return standard and not any(attr.type in graphs for attr in node.attribute)


def _cone(value: str, producers: dict[str, onnx.NodeProto], maybe: set[str]) -> set[str]:
    """First outputs of the maybe-constant nodes ``value`` is computed from."""
    cone: set[str] = set()
    stack = [value]
    while stack:
        name = stack.pop()
        node = producers.get(name)
        if node is None or name not in maybe or node.output[0] in cone:
            continue
        cone.add(node.output[0])
        if node.op_type not in ("Shape", "Size"):  # their input is read for its dims only
            stack += [name for name in node.input if name]
    return cone


def _reads_float(node: onnx.NodeProto, floats: set[str]) -> bool:
    if node.op_type == "Constant":
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        return value is not None and value.data_type == onnx.TensorProto.FLOAT
    return any(name in floats for name in node.input)


def unshare_lstm_weights(model: onnx.ModelProto) -> None:
    """Give each LSTM node its own W and R initializer (copies where one is shared), in place."""
    weights = {tensor.name: tensor for tensor in model.graph.initializer}
    uses: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    for index, node in enumerate(model.graph.node):
        for slot in (1, 2) if node.op_type == "LSTM" else ():
            name = node.input[slot]
            if uses.get(name, 0) > 1 and name in weights:
                uses[name] -= 1  # the last reader keeps the original
                copy = onnx.TensorProto()
                copy.CopyFrom(weights[name])
                copy.name = f"{name}_lstm{index}"
                model.graph.initializer.append(copy)
                node.input[slot] = copy.name


def check_recurrent_weights(model: onnx.ModelProto) -> None:
    """Raise unless every LSTM/GRU/RNN W and R is a stored float32 initializer.

    ORT quantizes only those (any other LSTM silently stays fp32) and the weight-only path
    reads them as arrays; anything else is one clear error, before quantizing.
    """
    weights = {tensor.name: tensor for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type not in ("LSTM", "GRU", "RNN"):
            continue
        for slot, role in ((1, "input weight W"), (2, "recurrent weight R")):
            weight = weights.get(node.input[slot])
            if weight is None:
                problem = "is computed when the graph runs, not stored as a constant"
            elif weight.data_type != onnx.TensorProto.FLOAT:
                dtype = onnx.helper.tensor_dtype_to_np_dtype(weight.data_type)
                problem = f"is {dtype}; int8 quantization takes float32 weights"
            else:
                continue
            raise EdgeRNNError(
                f"int8: cannot quantize {node.op_type} node {node.name or node.output[0]!r}: "
                f"its {role} {node.input[slot]!r} {problem}; {KEEP_FP32}"
            )


def one_line(error: Exception) -> str:
    """The first line of an error from a library (ORT, onnxscript), for an EdgeRNNError."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
