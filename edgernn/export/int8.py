"""int8 ONNX: ONNX Runtime dynamic quantization, plus weight-only int8 for GRU and RNN nodes.

``quantize_dynamic`` turns LSTM nodes into ``DynamicQuantizeLSTM`` (int8 weights, integer
gate matmuls), MatMul with a constant weight into ``DynamicQuantizeMatMul``/``MatMulInteger``
and embedding ``Gather`` into an int8 table plus ``DequantizeLinear``. Two gaps are closed
here:

- ``Gemm`` is not in ORT's dynamic registry, and the exporters emit it for every Linear on
  2-D input (classifier heads, seq2seq decoder projections); such a Gemm is rewritten as
  MatMul + Add first, which is the same arithmetic.
- ORT has no quantized GRU or RNN kernel. Their W and R are stored as int8 initializers
  (symmetric, per tensor or per gate row) and turned back into float by ``Cast`` + ``Mul``
  feeding the node, so the file holds 1 byte per weight and the recurrence runs in the
  fused fp32 kernel. Measured (``benchmarks/export_int8.py``, default teachers, 1 thread):
  the ``Cast``+``Mul`` form is constant-folded by ORT when the session starts and runs as
  fast as fp32; the QDQ form (``DequantizeLinear``) is *not* folded by default, so it
  dequantizes on every call: 6-20% slower than fp32 for GRU, 0-10% for RNN (it matches
  fp32 only when the app sets the session option ``session.disable_quant_qdq=1``). Both
  give the same file size (26-30% of fp32). Decomposing the cell into integer matmuls
  would need a ``Loop``/``Scan`` over time, which the op audit forbids; it was not tried.
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgernn.errors import EdgeRNNError


def quantize_int8(
    model: onnx.ModelProto, per_channel: bool = False, recurrent_form: str = "cast"
) -> onnx.ModelProto:
    """Dynamic int8 version of an exported fp32 graph (inputs and outputs unchanged).

    Args:
        model: a checked fp32 graph from ``to_onnx``.
        per_channel: one scale per output channel instead of one per weight tensor.
        recurrent_form: how GRU/RNN int8 weights become float: ``cast`` (Cast + Mul) or
            ``dequantize_linear``; see the module docstring for why ``cast`` is the default.

    Returns:
        The int8 model; weights are int8 everywhere ORT allows, activations stay float.

    Example::

        int8 = quantize_int8(fp32_model)
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = _gemm_to_matmul(model)
    with tempfile.TemporaryDirectory() as temp:
        output = Path(temp) / "int8.onnx"
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)  # "consider pre-processing" advice for image models
        try:
            quantize_dynamic(source, output, per_channel=per_channel, weight_type=QuantType.QInt8)
        finally:
            logging.disable(previous)
        quantized = onnx.load(output)
    _int8_recurrent_weights(quantized, per_channel, recurrent_form)
    del quantized.graph.value_info[:]  # inferred shapes the quantizer stored; ORT re-infers
    _audit(model, quantized)
    return quantized


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {tensor.name: tensor for tensor in model.graph.initializer}


def _gemm_to_matmul(model: onnx.ModelProto) -> onnx.ModelProto:
    model = onnx.ModelProto.FromString(model.SerializeToString())
    weights, nodes = _initializers(model), []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = attrs.get("alpha", 1.0) == attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA")
        if node.op_type != "Gemm" or node.input[1] not in weights or not plain:
            nodes.append(node)
            continue
        matrix = numpy_helper.to_array(weights[node.input[1]])
        name = f"{node.input[1]}_matmul"
        model.graph.initializer.append(
            numpy_helper.from_array(matrix.T.copy() if attrs.get("transB") else matrix, name)
        )
        product = f"{node.output[0]}_product" if len(node.input) > 2 else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [product]))
        if len(node.input) > 2:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    _drop_unused_initializers(model)
    return model


def _symmetric_int8(weight: np.ndarray, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    # Symmetric (zero point 0) so the dequantized zero is exact; axis 1 is the gate/unit row.
    reduce = (0, 2) if per_channel else None
    scale = np.abs(weight).max(axis=reduce) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    shaped = scale.reshape(1, -1, 1) if per_channel else scale
    return np.clip(np.round(weight / shaped), -127, 127).astype(np.int8), scale


def _int8_recurrent_weights(model: onnx.ModelProto, per_channel: bool, form: str) -> None:
    weights, added = _initializers(model), []
    for node in model.graph.node:
        if node.op_type not in ("GRU", "RNN"):
            continue
        for slot in (1, 2):  # W and R; B stays fp32 (tiny)
            name = node.input[slot]
            quantized, scale = _symmetric_int8(numpy_helper.to_array(weights[name]), per_channel)
            added += _DEQUANTIZE[form](model, name, quantized, scale, per_channel)
            node.input[slot] = f"{name}_dequantized"
    # Constant-input nodes first keeps the graph topologically sorted.
    nodes = added + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    _drop_unused_initializers(model)


def _cast_and_scale(model, name, quantized, scale, per_channel) -> list[onnx.NodeProto]:
    # Plain Cast + Mul on initializers: every ORT build constant-folds it at session start.
    shaped = scale.reshape(1, -1, 1) if per_channel else scale
    names = [f"{name}_int8", f"{name}_scale", f"{name}_float"]
    model.graph.initializer.extend(
        [numpy_helper.from_array(quantized, names[0]), numpy_helper.from_array(shaped, names[1])]
    )
    return [
        helper.make_node("Cast", [names[0]], [names[2]], to=onnx.TensorProto.FLOAT),
        helper.make_node("Mul", [names[2], names[1]], [f"{name}_dequantized"]),
    ]


def _dequantize_linear(model, name, quantized, scale, per_channel) -> list[onnx.NodeProto]:
    # The QDQ form; ORT keeps DequantizeLinear unfolded (it runs on every call) unless the
    # session sets "session.disable_quant_qdq" to "1".
    names = [f"{name}_int8", f"{name}_scale", f"{name}_zero_point"]
    values = (quantized, scale, np.zeros(scale.shape, np.int8))
    for value, tensor_name in zip(values, names, strict=True):
        model.graph.initializer.append(numpy_helper.from_array(value, tensor_name))
    axis = {"axis": 1} if per_channel else {}
    return [helper.make_node("DequantizeLinear", names, [f"{name}_dequantized"], **axis)]


_DEQUANTIZE = {"cast": _cast_and_scale, "dequantize_linear": _dequantize_linear}
RECURRENT_FORMS = tuple(_DEQUANTIZE)


def _drop_unused_initializers(model: onnx.ModelProto) -> None:
    used = {name for node in model.graph.node for name in node.input}
    keep = [tensor for tensor in model.graph.initializer if tensor.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def _audit(fp32: onnx.ModelProto, int8: onnx.ModelProto) -> None:
    before = Counter(node.op_type for node in fp32.graph.node)
    after = Counter(node.op_type for node in int8.graph.node)
    kept = (after["GRU"], after["RNN"]) == (before["GRU"], before["RNN"])
    if after["LSTM"] or after["DynamicQuantizeLSTM"] != before["LSTM"] or not kept:
        raise EdgeRNNError(
            f"int8 quantization changed the recurrent nodes unexpectedly ({dict(after)}); "
            "please report it"
        )
    onnx.checker.check_model(int8)
