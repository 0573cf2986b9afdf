"""int8 on graphs of users' own modules, exported by hand with either torch exporter.

Both exporters fold constants by default; without it (dynamo ``optimize=False``, the default
before torch 2.7 when no file is given; TorchScript ``do_constant_folding=False``) the
recurrent weights are computed by Slice/Concat/Mul/Unsqueeze nodes, which ORT's quantizer
skips. Every model is checked in all four forms: its int8 kernels, its int8 weights and
its outputs against PyTorch.
"""

from __future__ import annotations

import functools
import io
import logging
import warnings
from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from export_cases import make_checkpoint
from onnx import helper, numpy_helper
from torch import nn

from edgernn.errors import EdgeRNNError
from edgernn.export import build_graphs, quantize_int8, session, to_onnx
from edgernn.export.fold import fold_weights

EXPORTS = {  # name -> (dynamo?, torch.onnx.export options)
    "dynamo": (True, {}),
    "dynamo-unfolded": (True, {"optimize": False}),
    "torchscript": (False, {}),
    "torchscript-unfolded": (False, {"do_constant_folding": False}),
}
INT8 = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
# int8 vs fp32, as a share of the largest fp32 output. Each weight is rounded by at most
# half a step of 1/64 of its range (7-bit integer kernels) or 1/127 (weight-only GRU), each
# activation by half a step of 1/255 of its range; through two layers and 12 steps these
# tiny models measure at most 0.9%. 3% leaves room for other CPUs' rounding and still fails
# on the u8s8 int16 saturation of AVX2 CPUs (full-range weights: 6-15%, measured).
RELATIVE_BOUND = 0.03


class TokenLSTM(nn.Module):
    """Token ids -> Embedding -> LSTM -> Linear on the last step."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.rnn = nn.LSTM(8, 16, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        out, _ = self.rnn(self.embed(x))
        return self.head(out[:, -1])


class BiLSTM(nn.Module):
    """Float features -> 2-layer bidirectional LSTM -> Linear on the last step."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(4, 12, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(24, 2)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class ConvGRU(nn.Module):
    """A Conv1d front end, a 2-layer GRU, a Linear head: layers around the recurrence."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 3, padding=1)
        self.rnn = nn.GRU(8, 16, num_layers=2, batch_first=True)
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        features = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        out, _ = self.rnn(features)
        return self.head(out[:, -1])


class Siamese(nn.Module):
    """One recurrent layer called on two inputs: its nodes share W and R."""

    def __init__(self, cell: type[nn.Module]):
        super().__init__()
        self.rnn = cell(4, 8, batch_first=True)
        self.head = nn.Linear(16, 2)

    def forward(self, x, y):
        a, _ = self.rnn(x)
        b, _ = self.rnn(y)
        return self.head(torch.cat([a[:, -1], b[:, -1]], -1))


MODELS = {
    "token-lstm": (TokenLSTM, 1),
    "bi-lstm": (BiLSTM, 1),
    "conv-gru": (ConvGRU, 1),
    "siamese-lstm": (functools.partial(Siamese, nn.LSTM), 2),
    "siamese-gru": (functools.partial(Siamese, nn.GRU), 2),
}


def _inputs(name: str, count: int, batch: int, steps: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if name == "token-lstm":
        return [rng.integers(0, 20, (batch, steps))]
    return [rng.standard_normal((batch, steps, 4)).astype(np.float32) for _ in range(count)]


@functools.cache
def _exported(name: str, export: str) -> tuple[nn.Module, onnx.ModelProto]:
    build, count = MODELS[name]
    torch.manual_seed(0)
    module = build().eval()
    args = tuple(torch.from_numpy(a) for a in _inputs(name, count, 2, 7, seed=0))
    names = [f"x{index}" for index in range(count)]
    dynamo, options = EXPORTS[export]
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            axes = {0: torch.export.Dim("batch"), 1: torch.export.Dim("time")}
            program = torch.onnx.export(
                module, args, dynamo=True, input_names=names, verbose=False,
                dynamic_shapes=tuple(axes for _ in names), **options,
            )  # fmt: skip
            return module, program.model_proto
        buffer = io.BytesIO()
        axes = {name: {0: "batch", 1: "time"} for name in names}
        torch.onnx.export(
            module, args, buffer, dynamo=False, input_names=names, dynamic_axes=axes, **options
        )
        return module, onnx.load_from_string(buffer.getvalue())


def _worst_relative(module: nn.Module, name: str, int8: onnx.ModelProto) -> float:
    # On the traced shape and others; an axis the exporter fixed keeps its size.
    sess, worst, scale = session(int8), 0.0, 0.0
    dims = [value.shape for value in sess.get_inputs()]
    for seed, (batch, steps) in enumerate([(2, 7), (1, 4), (5, 12)]):
        batch = batch if isinstance(dims[0][0], str) else dims[0][0]
        steps = steps if isinstance(dims[0][1], str) else dims[0][1]
        arrays = _inputs(name, len(dims), batch, steps, seed + 1)
        (got,) = sess.run(None, {f"x{i}": a for i, a in enumerate(arrays)})
        with torch.no_grad():
            want = module(*(torch.from_numpy(a) for a in arrays)).numpy()
        worst = max(worst, float(np.abs(got - want).max()))
        scale = max(scale, float(np.abs(want).max()))
    return worst / scale


def _stored_int8(model: onnx.ModelProto, name: str) -> bool:
    # An int8 initializer, or Mul(Cast(int8 initializer), scale) for weight-only GRU.
    producers = {output: node for node in model.graph.node for output in node.output}
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    if name in producers and producers[name].op_type == "Mul":
        cast = producers.get(producers[name].input[0])
        name = cast.input[0] if cast is not None and cast.op_type == "Cast" else name
    return name in initializers and initializers[name].data_type in INT8


def _assert_int8_everywhere(fp32: onnx.ModelProto, int8: onnx.ModelProto) -> None:
    before = Counter(node.op_type for node in fp32.graph.node)
    ops = Counter(node.op_type for node in int8.graph.node)
    assert ops["DynamicQuantizeLSTM"] == before["LSTM"] and ops["GRU"] == before["GRU"]
    assert not {"LSTM", "MatMul", "Gemm", "Conv"} & set(ops)  # every weighted op is int8
    weights = {"DynamicQuantizeLSTM": (1, 2), "GRU": (1, 2)}
    weights |= {"MatMulInteger": (1,), "ConvInteger": (1,)}
    for node in int8.graph.node:
        for slot in weights.get(node.op_type, ()):
            assert _stored_int8(int8, node.input[slot]), (node.op_type, node.input[slot])
    initializers = {tensor.name: tensor for tensor in int8.graph.initializer}
    for node in int8.graph.node:  # an embedding table read from the file is int8 too
        if node.op_type == "Gather" and node.input[0] in initializers:
            assert initializers[node.input[0]].data_type in INT8


@pytest.mark.parametrize("export", EXPORTS)
@pytest.mark.parametrize("name", ["token-lstm", "bi-lstm", "conv-gru"])
def test_a_users_model_quantizes_from_either_exporter(name, export):
    module, fp32 = _exported(name, export)
    int8 = quantize_int8(fp32)
    _assert_int8_everywhere(fp32, int8)
    assert _worst_relative(module, name, int8) < RELATIVE_BOUND
    # Unfolded, the recurrent weights are computed by nodes (what ORT skipped); folded, they
    # are stored and the graph is quantized as exported.
    stored = {tensor.name for tensor in fp32.graph.initializer}
    recurrent = [node for node in fp32.graph.node if node.op_type in ("LSTM", "GRU")]
    computed = any(node.input[1] not in stored for node in recurrent)
    assert computed == ("unfolded" in export) == (fold_weights(fp32) is not fp32)


@pytest.mark.parametrize("export", ["dynamo", "torchscript", "torchscript-unfolded"])
@pytest.mark.parametrize("name", ["siamese-lstm", "siamese-gru"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_a_layer_called_twice_quantizes_both_calls(name, export, per_channel):
    # Dynamo shares one W/R between the two nodes, TorchScript through Identity nodes; ORT's
    # LSTM quantizer edits a shared initializer in place, and a GRU's int8 copy was written
    # twice (an invalid graph).
    module, fp32 = _exported(name, export)
    int8 = quantize_int8(fp32, per_channel=per_channel)
    _assert_int8_everywhere(fp32, int8)
    assert _worst_relative(module, name, int8) < RELATIVE_BOUND


def test_weights_past_the_folders_size_limit_are_folded_too():
    # onnxscript folds no input over 8192 elements unless told to; R here has 4 * 48 * 48.
    torch.manual_seed(0)
    module, buffer = nn.LSTM(4, 48).eval(), io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        args = (torch.randn(5, 2, 4),)
        torch.onnx.export(module, args, buffer, dynamo=False, do_constant_folding=False)
    int8 = quantize_int8(onnx.load_from_string(buffer.getvalue()))
    assert Counter(node.op_type for node in int8.graph.node)["DynamicQuantizeLSTM"] == 1


def test_edgernn_graphs_are_not_refolded():
    # Every weight of an edgernn export is already an initializer: the graph is left as is.
    checkpoint = make_checkpoint("classify", "lstm", bidirectional=True)
    (graph,) = build_graphs(checkpoint.build())
    proto, _ = to_onnx(graph, prefer="torchscript")
    assert fold_weights(proto) is proto


def _runtime_weight_graph(op: str) -> onnx.ModelProto:
    # A recurrent node whose W is a graph input: there is no stored weight to quantize.
    gates = {"LSTM": 4, "GRU": 3}[op] * 8
    recurrent = np.zeros((1, gates, 8), np.float32)
    node = helper.make_node(op, ["x", "w", "r"], ["y"], hidden_size=8, name="rnn")
    graph = helper.make_graph(
        [node],
        "user",
        [
            helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["time", "batch", 4]),
            helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, [1, gates, 4]),
        ],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["time", 1, "batch", 8])],
        [numpy_helper.from_array(recurrent, "r")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_a_graph_it_cannot_quantize_is_one_clear_error(op):
    with pytest.raises(EdgeRNNError) as error:
        quantize_int8(_runtime_weight_graph(op))
    message = str(error.value)
    assert "\n" not in message
    assert f"cannot quantize {op} node 'rnn'" in message
    assert "input weight W 'w' is computed when the graph runs" in message
    assert "--no-int8" in message
