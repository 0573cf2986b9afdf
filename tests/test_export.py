"""ONNX export: every zoo model exports, passes the op audit and matches PyTorch."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from export_cases import (
    CASES,
    DYNAMO_CASES,
    DYNAMO_SEQ2SEQ_CASES,
    SEQ2SEQ_CASES,
    bundle,
    make_checkpoint,
)

from edgernn.bundle.manifest import read_manifest
from edgernn.errors import EdgeRNNError
from edgernn.export import (
    ExportConfig,
    build_graphs,
    check_parity,
    export_bundle,
    exportable,
    session,
    to_onnx,
)
from edgernn.export import trace as trace_module
from edgernn.export.graphs import example_inputs
from edgernn.export.parity import random_lengths
from edgernn.models.encoder import length_mask
from edgernn.runtime import Runtime

UNSEEN_SHAPES = [(1, 1), (2, 5), (5, 8)]  # (batch, time); the trace used (3, 6)
RECURRENT = ("LSTM", "GRU", "RNN")
MATRIX = [(*case, "torchscript") for case in CASES] + [(*case, "dynamo") for case in DYNAMO_CASES]
SEQ2SEQ = [(*case, "torchscript") for case in SEQ2SEQ_CASES]
SEQ2SEQ += [(*case, "dynamo") for case in DYNAMO_SEQ2SEQ_CASES]


def _ops(path) -> Counter:
    return Counter(node.op_type for node in onnx.load(path).graph.node)


def _torch_outputs(model, inputs, lengths):
    with torch.no_grad():
        return model(inputs, lengths).numpy()


@pytest.mark.parametrize("task, cell, bidirectional, exporter", MATRIX)
def test_every_model_exports_with_parity(task, cell, bidirectional, exporter):
    directory, checkpoint = bundle(task, cell, bidirectional, exporter=exporter)
    manifest = read_manifest(directory)
    assert {entry["exporter"] for entry in manifest["files"]} == {exporter}
    roles = {(entry["role"], entry["precision"]) for entry in manifest["files"]}
    expected = {"model"} | (set() if bidirectional else {"step"})
    assert roles == {(role, p) for role in expected for p in ("fp32", "int8")}
    ops = _ops(directory / "model.onnx")
    assert sum(ops[name] for name in RECURRENT) == 2  # one node per layer, two layers
    assert ops[{"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[cell]] == 2
    assert not ops["Loop"] and not ops["Scan"]
    onnx.checker.check_model(onnx.load(directory / "model.onnx"), full_check=True)
    # Independent of the exporter's own check: the runtime on unseen padded shapes.
    runtime, model = Runtime(directory, "fp32"), checkpoint.build()
    for seed, (batch, steps) in enumerate(UNSEEN_SHAPES):
        lengths = random_lengths(batch, steps, seed + 10)
        inputs = example_inputs(checkpoint.spec, tuple(lengths.tolist()), seed)
        feeds = {"inputs": inputs.numpy(), "lengths": lengths.numpy()}
        (got,) = runtime.run("model", feeds).values()
        want = _torch_outputs(model, inputs, lengths)
        diff = np.abs(got - want)
        if task in ("tag", "lm"):
            diff = diff[length_mask(lengths, steps).numpy()]
        assert diff.max() <= 1e-4


@pytest.mark.parametrize("task, cell, exporter", [(t, c, e) for t, c, bi, e in MATRIX if not bi])
def test_streaming_step_graph_equals_full_sequence(task, cell, exporter):
    directory, checkpoint = bundle(task, cell, False, exporter=exporter)
    runtime = Runtime(directory, "fp32")
    lengths = np.array([7, 7], dtype=np.int64)
    inputs = example_inputs(checkpoint.spec, (7, 7), seed=3).numpy()
    (full,) = runtime.run("model", {"inputs": inputs, "lengths": lengths}).values()
    state, pieces = None, []
    for start, stop in [(0, 1), (1, 4), (4, 5), (5, 7)]:
        chunk = inputs[:, start:stop]
        if task == "regress":  # step() takes raw features and scales them itself
            norm = checkpoint.meta.norm
            chunk = chunk * np.float32(norm["x_std"]) + np.float32(norm["x_mean"])
        result, state = runtime.step(chunk, state)
        pieces.append(result)
    streamed = np.concatenate(pieces, axis=1) if task in ("tag", "lm") else pieces[-1]
    # The full graph is derived from the step graph, so also compare with PyTorch itself.
    want = _torch_outputs(checkpoint.build(), torch.from_numpy(inputs), torch.from_numpy(lengths))
    if task == "regress":
        full, want = runtime.codec.denormalize(full), runtime.codec.denormalize(want)
    assert np.abs(streamed - full).max() <= 1e-5
    assert np.abs(streamed - want).max() <= 1e-4
    names = {"state_h", "state_c"} if cell == "lstm" else {"state_h"}
    assert set(state) == set(runtime.initial_state(2)) == names


@pytest.mark.parametrize("attention, cell, bidirectional, exporter", SEQ2SEQ)
def test_seq2seq_runtime_decodes_like_pytorch(attention, cell, bidirectional, exporter):
    directory, checkpoint = bundle("seq2seq", cell, bidirectional, attention, exporter)
    manifest = read_manifest(directory)
    assert {entry["role"] for entry in manifest["files"]} == {"encoder", "decoder"}
    for role in ("encoder", "decoder"):
        assert sum(_ops(directory / f"{role}.onnx")[name] for name in RECURRENT) == 2
    runtime, model = Runtime(directory, "fp32"), checkpoint.build()
    lengths = torch.tensor([6, 2, 4, 1])
    src = example_inputs(checkpoint.spec, tuple(lengths.tolist()), seed=7)
    greedy = runtime.decode_ids(src.numpy(), lengths.numpy(), beam=1, max_len=12)
    assert greedy == model.greedy(src, lengths, max_len=12)
    beam = runtime.decode_ids(src.numpy(), lengths.numpy(), beam=3, max_len=12)
    assert beam == model.beam_search(src, lengths, beam=3, max_len=12)


@pytest.mark.parametrize(
    "task, cell, pooling", [("classify", "gru", "mean"), ("classify", "lstm", "max"),
                            ("regress", "lstm", "mean"), ("regress", "rnn", "max")],
)  # fmt: skip
def test_mean_and_max_pooling_stream_through_a_running_pool(task, cell, pooling, tmp_path):
    checkpoint = make_checkpoint(task, cell, pooling=pooling)
    directory = export_bundle(checkpoint, tmp_path / "b", config=ExportConfig(evaluate=False))
    assert {entry["exporter"] for entry in read_manifest(directory)["files"]} == {"dynamo"}
    runtime = Runtime(directory, "fp32")
    inputs = example_inputs(checkpoint.spec, (7, 7, 7), seed=4).numpy()
    lengths = np.full(3, 7, dtype=np.int64)
    (full,) = runtime.run("model", {"inputs": inputs, "lengths": lengths}).values()
    state = runtime.initial_state(3)
    assert set(state) >= {"pool", "pool_steps"}
    for start, stop in [(0, 1), (1, 4), (4, 5), (5, 7)]:
        feeds = {"inputs": inputs[:, start:stop], "lengths": np.full(3, stop - start)} | state
        result, *carried = runtime.run("step", feeds).values()
        state = dict(zip(state, carried, strict=True))
    want = _torch_outputs(checkpoint.build(), torch.from_numpy(inputs), torch.from_numpy(lengths))
    assert np.abs(result - full).max() <= 1e-5
    assert np.abs(result - want).max() <= 1e-4
    assert state["pool_steps"].ravel().tolist() == [7.0, 7.0, 7.0]


def test_torchscript_exporter_is_the_fallback(monkeypatch):
    checkpoint = make_checkpoint("tag", "lstm", bidirectional=True)
    graph = build_graphs(checkpoint.build())[0]

    def broken(_graph):
        raise RuntimeError("dynamo cannot trace this")

    monkeypatch.setitem(trace_module.EXPORT_FUNCTIONS, "dynamo", broken)
    proto, exporter = to_onnx(graph)
    assert exporter == "torchscript"
    assert check_parity(checkpoint.build(), {"model": session(proto)})["model"] <= 1e-4


def test_audit_rejects_a_graph_without_one_node_per_layer():
    checkpoint = make_checkpoint("classify", "rnn", bidirectional=True)
    (graph,) = build_graphs(checkpoint.build())
    graph.recurrent_nodes = 3
    with pytest.raises(EdgeRNNError, match="one per layer"):
        to_onnx(graph, prefer="torchscript")


def test_parity_failure_is_loud():
    checkpoint = make_checkpoint("classify", "lstm", bidirectional=True)
    model = checkpoint.build()
    proto, _ = to_onnx(build_graphs(model)[0], prefer="torchscript")
    with torch.no_grad():
        model.head.bias.add_(1e-3)  # the graph no longer matches the model
    with pytest.raises(EdgeRNNError, match="differs from the PyTorch model"):
        check_parity(model, {"model": session(proto)})


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_exportable_copy_computes_what_the_model_computes(cell):
    # The custom op's eager path (used when tracing with TorchScript) and the ONNX-layout
    # weights it is given must reproduce the packed PyTorch layers exactly.
    checkpoint = make_checkpoint("tag", cell, bidirectional=True)
    model = checkpoint.build()
    lengths = torch.tensor([5, 2, 4])
    inputs = example_inputs(checkpoint.spec, tuple(lengths.tolist()), seed=4)
    with torch.no_grad():
        want, got = model(inputs, lengths), exportable(model)(inputs, lengths)
    assert torch.allclose(got, want, atol=1e-6)
