"""int8 ONNX: LSTM through ORT's quantized kernel, GRU/RNN through int8 weight initializers."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from export_cases import CELLS, make_checkpoint
from onnx import numpy_helper

from edgernn.export import build_graphs, check_parity, quantize_int8, session, to_onnx

INT8_TYPES = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)


def _export(cell: str, **sizes):
    checkpoint = make_checkpoint("classify", cell, bidirectional=True, **sizes)
    (graph,) = build_graphs(checkpoint.build())
    proto, _ = to_onnx(graph, prefer="torchscript")
    return checkpoint, proto


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {name: node for node in model.graph.node for name in node.output}


@pytest.mark.parametrize("cell", CELLS)
def test_int8_file_is_under_30_percent_and_quantizes_every_weight(cell):
    # Big enough that weights, not graph structure, dominate the file.
    checkpoint, fp32 = _export(cell, hidden=128, embed=64)
    int8 = quantize_int8(fp32)
    assert len(int8.SerializeToString()) <= 0.30 * len(fp32.SerializeToString())
    ops = Counter(node.op_type for node in int8.graph.node)
    initializers = {tensor.name: tensor for tensor in int8.graph.initializer}
    producers = _producers(int8)
    if cell == "lstm":
        assert ops["DynamicQuantizeLSTM"] == 2 and not ops["LSTM"]
    else:
        recurrent = [node for node in int8.graph.node if node.op_type == cell.upper()]
        assert len(recurrent) == 2
        for node in recurrent:
            for weight in node.input[1:3]:
                scale = producers[weight]  # int8 initializer -> Cast -> Mul by its scale
                cast = producers[scale.input[0]]
                assert (scale.op_type, cast.op_type) == ("Mul", "Cast")
                assert initializers[cast.input[0]].data_type == onnx.TensorProto.INT8
    assert ops["MatMulInteger"] >= 1  # the classifier head (a Gemm before quantization)
    embedding = next(n for n in int8.graph.node if n.op_type == "Gather")
    assert initializers[embedding.input[0]].data_type in INT8_TYPES
    floats = [t for t in int8.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    assert sum(int(np.prod(t.dims)) for t in floats) < 0.05 * sum(
        int(np.prod(t.dims)) for t in fp32.graph.initializer
    )  # only scales and biases stay float
    diffs = check_parity(checkpoint.build(), {"model": session(int8)}, np.inf, np.inf)
    assert diffs["model"] < 0.05


def test_per_channel_scales_follow_the_gate_rows():
    checkpoint, fp32 = _export("gru", hidden=16)
    for form, op, axis in [
        ("cast", "Mul", {}),
        ("dequantize_linear", "DequantizeLinear", {"axis": 1}),
    ]:
        int8 = quantize_int8(fp32, per_channel=True, recurrent_form=form)
        nodes = [n for n in int8.graph.node if n.output[0].endswith("_dequantized")]
        initializers = {tensor.name: tensor for tensor in int8.graph.initializer}
        assert len(nodes) == 4 and {n.op_type for n in nodes} == {op}  # W and R, two layers
        for node in nodes:
            assert {a.name: a.i for a in node.attribute} == axis
            scale = numpy_helper.to_array(initializers[node.input[1]])
            assert scale.size == 3 * 16  # one scale per gate row, shared by both directions
        diffs = check_parity(checkpoint.build(), {"model": session(int8)}, np.inf, np.inf)
        assert diffs["model"] < 0.05
