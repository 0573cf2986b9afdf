"""int8 ONNX: LSTM through ORT's quantized kernel, GRU/RNN through int8 weight initializers."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import onnx
import pytest
from export_cases import CELLS, make_checkpoint
from onnx import numpy_helper

from edgernn.errors import EdgeRNNError
from edgernn.export import (
    ExportConfig,
    build_graphs,
    check_parity,
    export_bundle,
    quantize_int8,
    session,
    to_onnx,
    writer,
)
from edgernn.export.int8 import integer_nodes, quantize_node
from edgernn.export.scoring import int8_sensitivity
from edgernn.runtime import Runtime

INT8_TYPES = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)


def _export(cell: str, task: str = "classify", **sizes):
    # Bidirectional: one graph (no step graph) with two recurrent nodes.
    checkpoint = make_checkpoint(task, cell, bidirectional=True, **sizes)
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
    assert not int8.graph.metadata_props  # the torch program signature is not this graph's
    diffs = check_parity(checkpoint.build(), {"model": session(int8)}, np.inf, np.inf)
    # Measured 0.001-0.006. Before 7-bit integer weights, 0.09 for rnn on an AVX2 CPU: not
    # int8 rounding but ORT's saturating u8s8 kernel (test_integer_kernels_get_7_bit_weights).
    assert diffs["model"] < 0.05


def test_integer_kernels_get_7_bit_weights():
    # On x86 CPUs without VNNI, ORT's uint8 x int8 kernels add pairs of products in int16
    # (vpmaddubsw), which saturates with full-range weights: 2 * 255 * 127 > 32767, and the
    # result is silently wrong (measured: MatMul outputs off by a third of their range).
    # |weight| <= 64 cannot saturate (2 * 255 * 64 < 32767). Checked on the file itself, so
    # it holds whatever CPU runs the tests (on a VNNI or ARM CPU the parity tests pass anyway).
    _, fp32 = _export("lstm", hidden=16)
    slots = {"DynamicQuantizeLSTM": (1, 2), "MatMulInteger": (1,)}
    for per_channel in (False, True):
        int8 = quantize_int8(fp32, per_channel)
        initializers = {tensor.name: tensor for tensor in int8.graph.initializer}
        weights = [
            numpy_helper.to_array(initializers[node.input[slot]])
            for node in int8.graph.node
            for slot in slots.get(node.op_type, ())
        ]
        assert len(weights) == 5  # W and R of two LSTM layers, the head
        for weight in weights:  # 7 bits, all of them used
            assert weight.dtype == np.int8 and np.abs(weight.astype(np.int32)).max() == 64


@pytest.mark.parametrize("per_channel", [False, True])
def test_weight_only_scales_follow_the_gate_rows(per_channel):
    # Per row whatever per_channel says: one scale per tensor cost a hidden-30 RNN 32 % MSE.
    checkpoint, fp32 = _export("gru", hidden=16)
    for form, op, axis in [
        ("cast", "Mul", {}),
        ("dequantize_linear", "DequantizeLinear", {"axis": 1}),
    ]:
        int8 = quantize_int8(fp32, per_channel=per_channel, recurrent_form=form)
        nodes = [n for n in int8.graph.node if n.output[0].endswith("_dequantized")]
        initializers = {tensor.name: tensor for tensor in int8.graph.initializer}
        assert len(nodes) == 4 and {n.op_type for n in nodes} == {op}  # W and R, two layers
        for node in nodes:
            assert {a.name: a.i for a in node.attribute} == axis
            scale = numpy_helper.to_array(initializers[node.input[1]])
            assert scale.size == 3 * 16  # one scale per gate row, shared by both directions
        diffs = check_parity(checkpoint.build(), {"model": session(int8)}, np.inf, np.inf)
        assert diffs["model"] < 0.05


INTEGER_OPS = {"DynamicQuantizeLSTM", "MatMulInteger", "DynamicQuantizeMatMul"}


def _from_int8(model: onnx.ModelProto, name: str) -> bool:
    # A weight input made by Mul(Cast(int8 initializer), scale): stored int8, used as float.
    producers, initializers = _producers(model), {t.name: t for t in model.graph.initializer}
    scale = producers.get(name)
    cast = scale and producers.get(scale.input[0])
    source = cast and initializers.get(cast.input[0])
    return bool(source) and source.data_type == onnx.TensorProto.INT8


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("per_channel", [False, True])
def test_weight_only_nodes_compute_in_float_from_int8_weights(cell, per_channel):
    checkpoint, fp32 = _export(cell, "regress", hidden=16)  # no embedding: every weight is
    candidates = integer_nodes(fp32)  # a recurrent node's or the head's
    assert sorted(candidates.values()) == sorted(["MatMul"] + ["LSTM"] * 2 * (cell == "lstm"))
    integer = quantize_int8(fp32, per_channel)
    kept = quantize_int8(fp32, per_channel, weight_only=set(candidates))
    ops = Counter(node.op_type for node in kept.graph.node)
    assert not INTEGER_OPS & set(ops) and not ops["DynamicQuantizeLinear"]
    assert ops[cell.upper()] == 2  # both layers keep their fp32 kernel
    weighted = [n for n in kept.graph.node if n.op_type in ("LSTM", "GRU", "RNN", "MatMul")]
    assert len(weighted) == 3
    for node in weighted:
        slots = node.input[1:2] if node.op_type == "MatMul" else node.input[1:3]
        assert all(_from_int8(kept, name) for name in slots), node.name
    # Weight-only keeps the int8 file size (1 byte per weight either way).
    assert len(kept.SerializeToString()) <= 1.05 * len(integer.SerializeToString())
    model = checkpoint.build()
    for int8 in (integer, kept):
        assert check_parity(model, {"model": session(int8)}, np.inf, np.inf)["model"] < 0.05


@pytest.mark.parametrize("cell", CELLS)
def test_per_channel_weight_only_int8_computes_what_the_c_target_computes(cell):
    # One scale per table row, gate row and head output, float activations: the int8 model
    # of edgernn.c, so the C code and the runtime write the same text (README, C target).
    # One-way: ONNX per-channel weights share a row's scale between directions, C does not.
    from edgernn.c.weights import int8_reference

    checkpoint = make_checkpoint("classify", cell, bidirectional=False, hidden=16, embed=8)
    fp32, _ = to_onnx(build_graphs(checkpoint.build())[-1], prefer="torchscript")  # model
    int8 = quantize_int8(fp32, per_channel=True, weight_only=set(integer_nodes(fp32)))
    lookups = [n for n in int8.graph.node if n.op_type == "Gather" and "_int8" in n.input[0]]
    assert len(lookups) == 1  # the embedding, looked up as int8 rows
    reference = int8_reference(checkpoint.build())
    assert check_parity(reference, {"model": session(int8)}, np.inf, np.inf)["model"] < 1e-5


def test_quantize_node_puts_only_that_node_on_an_integer_kernel():
    checkpoint, fp32 = _export("lstm", hidden=16)
    candidates = integer_nodes(fp32)
    assert sorted(candidates.values()) == ["LSTM", "LSTM", "MatMul"]
    for name, op in candidates.items():
        alone = quantize_node(fp32, name)
        ops = Counter(node.op_type for node in alone.graph.node)
        integer = ops["DynamicQuantizeLSTM"] + ops["MatMulInteger"] + ops["DynamicQuantizeMatMul"]
        assert integer == 1 and ops["DynamicQuantizeLSTM"] == (op == "LSTM")
        assert ops["LSTM"] == 2 - (op == "LSTM")
        int8 = [t for t in alone.graph.initializer if t.data_type in INT8_TYPES]
        assert 1 <= len(int8) <= 4  # that node's weights and zero points; no embedding table
        diffs = check_parity(checkpoint.build(), {"model": session(alone)}, np.inf, np.inf)
        assert diffs["model"] < 0.05


def test_weight_only_rejects_a_node_without_an_integer_kernel():
    _, fp32 = _export("lstm")
    embedding = next(node.name for node in fp32.graph.node if node.op_type == "Gather")
    for name in (embedding, "no_such_node"):
        with pytest.raises(EdgeRNNError, match="weight_only names no"):
            quantize_int8(fp32, weight_only={name})


def test_int8_sensitivity_scores_each_integer_node_alone():
    _, fp32 = _export("lstm")
    names = {
        op: [n for n, o in integer_nodes(fp32).items() if o == op] for op in ("LSTM", "MatMul")
    }
    seen = []

    def accuracy(graphs):  # an LSTM integer kernel costs 3 points, the head's 0.5
        ops = Counter(node.op_type for node in graphs["model"].graph.node)
        seen.append(sum(ops[op] for op in INTEGER_OPS))
        return 90.0 - 3 * ops["DynamicQuantizeLSTM"] - 0.5 * ops["MatMulInteger"]

    drops = int8_sensitivity({"model": fp32}, accuracy, "accuracy")
    expected = {name: 3.0 for name in names["LSTM"]} | {name: 0.5 for name in names["MatMul"]}
    assert drops == {"model": expected}
    assert seen == [0, 1, 1, 1]  # the fp32 reference first, then one integer node at a time


def _entries(directory) -> dict[str, dict]:
    manifest = json.loads((directory / "manifest.json").read_text())
    return {entry["path"]: entry for entry in manifest["files"]}


@pytest.mark.parametrize("forced", [False, True])
def test_export_runs_a_costly_integer_node_weight_only(tmp_path, classify_csv, monkeypatch, forced):
    checkpoint = make_checkpoint("classify", "lstm")  # unidirectional: model + step graphs
    if forced:  # whatever the tiny model measures, say both LSTM layers cost 5 points

        def fake(graphs, score, metric, per_channel=False):
            nodes = integer_nodes(graphs["model"])
            return {"model": {n: 5.0 if op == "LSTM" else 0.0 for n, op in nodes.items()}}

        monkeypatch.setattr(writer, "int8_sensitivity", fake)
    config = ExportConfig(evaluate=False, exporter="torchscript", int8_tolerance=0.5)
    directory = export_bundle(checkpoint, tmp_path / "bundle", str(classify_csv), config)
    files = _entries(directory)
    plan = files["model.int8.onnx"]["quantization"]
    assert files["step.int8.onnx"]["quantization"] == plan  # the step graph has the same nodes
    assert "quantization" not in files["model.onnx"]
    assert plan["measured_on"] == f"valid split of {classify_csv}" and plan["tolerance"] == 0.5
    costly = {node for node, drop in plan["sensitivity"].items() if drop > 0.5}
    assert set(plan["sensitivity"]) == set(plan["integer"]) | costly
    assert costly == set(plan["weight_only"])
    if forced:
        assert len(costly) == 2 and "costs 5 points accuracy" in plan["weight_only"][min(costly)]
    for path in ("model.int8.onnx", "step.int8.onnx"):
        int8 = onnx.load(directory / path)
        ops = Counter(node.op_type for node in int8.graph.node)
        nodes = {node.name: node for node in int8.graph.node}
        lstm = sum(nodes[name].op_type == "LSTM" for name in costly)
        assert ops["LSTM"] == lstm and ops["DynamicQuantizeLSTM"] == 2 - lstm
        for name in costly:  # still an LSTM / MatMul, fed by int8 weights
            weights = nodes[name].input[1 : 3 if nodes[name].op_type == "LSTM" else 2]
            assert all(_from_int8(int8, weight) for weight in weights)
        assert files[path]["parity"]["max_abs_diff"] < 0.05
    runtime = Runtime(directory, "int8")
    assert len(runtime.predict(["abc", "hg"])) == 2


def test_export_without_data_measures_nothing(tmp_path):
    checkpoint = make_checkpoint("classify", "gru")
    config = ExportConfig(evaluate=False, exporter="torchscript")
    files = _entries(export_bundle(checkpoint, tmp_path / "b", config=config))
    plan = files["model.int8.onnx"]["quantization"]
    assert plan["measured_on"] is None and plan["tolerance"] is None and plan["sensitivity"] == {}
    assert len(plan["weight_only"]) == 2 and len(plan["integer"]) == 1  # 2 GRU layers, the head


def _stream_vs_chunk(runtime: Runtime, rows: list[np.ndarray]) -> float:
    # The step graph one token per call vs the whole sequence in one call, each row alone.
    worst = 0.0
    for row in rows:
        ids = row[None].astype(np.int64)
        whole, _ = runtime.step(ids)
        state = None
        for t in range(ids.shape[1]):
            last, state = runtime.step(ids[:, t : t + 1], state)
        worst = max(worst, float(np.abs(last - whole).max()))
    return worst


@pytest.mark.parametrize("independent", [False, True])
def test_int8_files_record_whether_batch_mates_change_their_results(
    tmp_path, classify_csv, independent
):
    # Integer kernels take one activation scale per call from the whole input tensor, so a
    # row's result depends on its batch mates, its padding and the chunking of a stream;
    # weight-only int8 computes in float and does not. Each int8 entry says which, and how
    # much it measured on the valid split (padded batches of 32 vs each example alone);
    # int8_batch_independent makes every node weight-only: streaming equals one chunk.
    from edgernn.checkpoint import checkpoint_data
    from edgernn.export.int8 import batch_dependence

    checkpoint = make_checkpoint("classify", "lstm")  # unidirectional: model + step graphs
    config = ExportConfig(
        evaluate=False, exporter="torchscript", int8_batch_independent=independent
    )
    directory = export_bundle(checkpoint, tmp_path / "bundle", str(classify_csv), config)
    files = _entries(directory)
    plan, step = files["model.int8.onnx"]["quantization"], files["step.int8.onnx"]["quantization"]
    examples = checkpoint_data(checkpoint, str(classify_csv))[0].splits["valid"]
    assert len(examples) > 1
    int8 = {"model": session(onnx.load(directory / "model.int8.onnx"))}
    measured = batch_dependence(int8, examples)
    assert plan["batch_max_abs_diff"] == step["batch_max_abs_diff"] == pytest.approx(measured)
    assert plan["batch_dependent"] == step["batch_dependent"] == (not independent)
    assert (plan["integer"] == []) == independent
    fp32 = {"model": session(onnx.load(directory / "model.onnx"))}
    assert batch_dependence(fp32, examples) < 1e-5
    runtime = Runtime(directory, "int8")
    chunking = _stream_vs_chunk(runtime, [x.numpy() for x, _ in examples])
    if independent:  # exactly what fp32 guarantees: batch mates and chunking change nothing
        assert plan["batch_max_abs_diff"] < 1e-5 and chunking < 1e-5
    else:  # tiny models: 0.002-0.03; trained teachers 0.2-0.3 (benchmarks/int8_batching.py)
        assert 0 < plan["batch_max_abs_diff"] < 0.1 and 0 < chunking < 0.1


def test_a_node_that_costs_only_at_batch_1_runs_weight_only(tmp_path, monkeypatch):
    # The sensitivity pass scores each integer node in padded batches *and* with each
    # example alone: a kernel whose per-call input scale hurts only small calls (streaming,
    # one request at a time) is caught too. Simulated: an integer LSTM that is off at batch
    # 1 only (real ones move trained logits by up to 0.3, benchmarks/int8_batching.py).
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 9, size=60)
    x = rng.normal(size=(60, 8, 3)).astype(np.float32)
    y = np.stack([x[np.arange(60), lengths - 1, 0], x[:, 0, 1]], axis=1).astype(np.float32)
    data = tmp_path / "series.npz"
    np.savez(data, x=x, lengths=lengths.astype(np.int64), y=y)
    real_run = Runtime.run

    def run(self, role, feeds):
        outputs = real_run(self, role, feeds)
        path = self.directory / self._graphs[role][0]["path"]
        ops = {node.op_type for node in onnx.load(path).graph.node}
        if "DynamicQuantizeLSTM" in ops and len(feeds["lengths"]) == 1:
            return {name: value + 1.0 for name, value in outputs.items()}
        return outputs

    monkeypatch.setattr(Runtime, "run", run)
    checkpoint = make_checkpoint("regress", "lstm")
    config = ExportConfig(evaluate=False, exporter="torchscript", int8_tolerance=0.5)
    plan = _entries(export_bundle(checkpoint, tmp_path / "b", str(data), config))[
        "model.int8.onnx"
    ]["quantization"]
    lstm = {name for name, op in integer_nodes(onnx.load(tmp_path / "b" / "model.onnx")).items()
            if op == "LSTM"}  # fmt: skip
    assert len(lstm) == 2 and set(plan["weight_only"]) == lstm
    assert all("batch 1" in why for why in plan["weight_only"].values())
    assert len(plan["integer"]) == 1  # the head: batch 1 costs it nothing here
    assert plan["batch_dependent"]  # the head still runs its integer kernel
