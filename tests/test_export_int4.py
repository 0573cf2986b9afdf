"""4-bit embedding tables: ``GatherBlockQuantized`` matches its numpy reference exactly."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from export_cases import make_checkpoint
from onnx import TensorProto, helper, numpy_helper

from edgernn.bundle.schema import check_manifest
from edgernn.errors import EdgeRNNError
from edgernn.export import ExportConfig, export_bundle, quantize_int8, session
from edgernn.export.int4 import (
    dequantize_rows,
    four_bit_tables,
    quantize_rows,
    table_plan,
)
from edgernn.export.requirements import graph_requirements
from edgernn.runtime import Runtime

IDS = np.array([[3, 0, 7], [1, 1, -1]], np.int64)  # a repeated id and a negative one


def _gather_graph(table: np.ndarray, project: np.ndarray | None = None) -> onnx.ModelProto:
    # ids (B, T) -> Gather(table) [-> MatMul(project), a low-rank embedding] -> output.
    nodes = [helper.make_node("Gather", ["table", "ids"], ["rows"], "node_embedding")]
    weights = [numpy_helper.from_array(table, "table")]
    width = table.shape[1]
    if project is not None:
        nodes.append(helper.make_node("MatMul", ["rows", "project"], ["out"], "node_project"))
        weights.append(numpy_helper.from_array(project, "project"))
        width = project.shape[1]
    else:
        nodes[0].output[0] = "out"
    graph = helper.make_graph(
        nodes,
        "embedding",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "time"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "time", width])],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


def _table(rows: int, width: int, seed: int = 0) -> np.ndarray:
    table = np.random.default_rng(seed).normal(size=(rows, width)).astype(np.float32)
    table[0] = 0.0  # the padding row
    return table


@pytest.mark.parametrize(("width", "block"), [(64, 32), (10, 16), (33, 16), (48, 32), (20, 64)])
def test_ort_gathers_exactly_the_numpy_dequantized_rows(width, block):
    # Widths that are not a multiple of the block leave a partial last block per row.
    table = _table(12, width)
    model = _gather_graph(table)
    assert four_bit_tables(model, block) == ["node_embedding"]
    onnx.checker.check_model(model)
    (node,) = model.graph.node
    assert (node.op_type, node.domain) == ("GatherBlockQuantized", "com.microsoft")
    assert "table" not in {tensor.name for tensor in model.graph.initializer}  # no fp32 left
    out = session(model).run(None, {"ids": IDS})[0]
    codes, scales, zero_points = quantize_rows(table, block)
    reference = dequantize_rows(codes, scales, zero_points, block)
    assert out.shape == (*IDS.shape, width)
    np.testing.assert_allclose(out, reference[IDS], rtol=0, atol=1e-6)
    # At most half a step from the float table; the padding row stays exactly zero.
    half_step = np.repeat(scales, block, axis=1)[:, :width] / 2
    assert np.all(np.abs(out - table[IDS]) <= half_step[IDS] + 1e-6)
    assert not out[0, 1].any()


def test_four_bit_table_is_smaller_than_int8_and_declares_its_runtime():
    model = _gather_graph(_table(2000, 64))
    int8, int4 = quantize_int8(model), quantize_int8(model, embed_bits=4)
    assert [node.op_type for node in int4.graph.node] == ["GatherBlockQuantized"]
    assert len(int4.SerializeToString()) < 0.7 * len(int8.SerializeToString())
    assert graph_requirements(int4) == {
        "ops": {"ai.onnx": 18, "com.microsoft": ["GatherBlockQuantized"]},
        "min_onnxruntime": "1.20",
    }
    assert int4.ir_version == 10  # the first with 4-bit tensors; the graph came as 8
    assert graph_requirements(int8)["min_onnxruntime"] == "1.14"


def test_low_rank_embedding_feeds_its_projection_from_four_bits():
    table, project = _table(300, 16), _table(16, 64, seed=1)
    model = _gather_graph(table, project)
    int4 = quantize_int8(model, embed_bits=4)
    ops = [node.op_type for node in int4.graph.node]
    assert ops[0] == "GatherBlockQuantized" and "MatMulInteger" in ops  # projection int8
    expected = session(model).run(None, {"ids": IDS})[0]
    out = session(int4).run(None, {"ids": IDS})[0]
    assert np.abs(out - expected).max() < 0.1 * np.abs(expected).max()


def test_shared_and_narrow_tables_stay_int8_with_a_reason():
    table = _table(40, 32)
    tied = _gather_graph(table)
    tied.graph.node.append(helper.make_node("Transpose", ["table"], ["tied"]))  # output layer
    plan = table_plan(tied)
    assert plan["node_embedding"]["bits"] == 8 and "shared" in plan["node_embedding"]["why"]
    assert four_bit_tables(tied) == []
    narrow = table_plan(_gather_graph(_table(40, 8)))["node_embedding"]
    assert narrow["bits"] == 8 and "not be smaller" in narrow["why"]
    assert table_plan(_gather_graph(table), embed_bits=8) == {"node_embedding": {"bits": 8}}


@pytest.mark.parametrize("bits", [5, 16, 0])
def test_embed_bits_other_than_4_or_8_is_refused(bits):
    with pytest.raises(EdgeRNNError, match="embed_bits"):
        ExportConfig(embed_bits=bits)
    with pytest.raises(EdgeRNNError, match="embed_bits"):
        quantize_int8(_gather_graph(_table(4, 16)), embed_bits=bits)


@pytest.mark.parametrize("block", [8, 24, 0])
def test_block_sizes_ort_refuses_are_refused(block):
    with pytest.raises(EdgeRNNError, match="power of 2"):
        four_bit_tables(_gather_graph(_table(4, 16)), block)


def _export(tmp_path, embed_bits: int):
    checkpoint = make_checkpoint("classify", "lstm", vocab_size=2000, embed=64)
    config = ExportConfig(evaluate=False, exporter="torchscript", embed_bits=embed_bits)
    directory = export_bundle(checkpoint, tmp_path / f"bits{embed_bits}", config=config)
    manifest = json.loads((directory / "manifest.json").read_text())
    check_manifest(manifest, directory / "manifest.json")
    return directory, {entry["path"]: entry for entry in manifest["files"]}, manifest


def test_exported_classifier_with_four_bit_table(tmp_path):
    _, int8_files, _ = _export(tmp_path, 8)
    directory, files, manifest = _export(tmp_path, 4)
    for path in ("model.int8.onnx", "step.int8.onnx"):
        entry = files[path]
        assert entry["size_bytes"] < 0.75 * int8_files[path]["size_bytes"]
        assert "GatherBlockQuantized" in entry["ops"]["com.microsoft"]
        assert entry["min_onnxruntime"] == "1.20"
        tables = entry["quantization"]["embedding_tables"]
        assert tables == {"/encoder/embedding/Gather": {"bits": 4, "block_size": 32}}
        assert int8_files[path]["quantization"]["embedding_tables"] == {
            "/encoder/embedding/Gather": {"bits": 8}
        }
    assert manifest["min_onnxruntime"] == "1.20"
    ids = np.random.default_rng(0).integers(0, 2000, size=(4, 9))
    feeds = {"inputs": ids, "lengths": np.array([9, 5, 3, 1])}
    fp32, int4 = (
        session(onnx.load(directory / path)).run(None, feeds)[0]
        for path in ("model.onnx", "model.int8.onnx")
    )
    assert np.abs(int4 - fp32).max() < 0.05 * max(1.0, np.abs(fp32).max())
    runtime = Runtime(directory, "int8")  # the runtime verifies and loads the bundle
    assert len(runtime.predict(["abc"])[0]["probabilities"]) == 3


def test_cli_embed_bits_flag_reaches_the_manifest(tmp_path):
    from click.testing import CliRunner

    from edgernn.checkpoint import save_checkpoint
    from edgernn.cli import main

    path = save_checkpoint(make_checkpoint("classify", "lstm"), tmp_path / "m.pt")
    out = tmp_path / "bundle"
    args = ["export", str(path), "-o", str(out), "--no-eval", "--exporter", "torchscript"]
    assert CliRunner().invoke(main, [*args, "--embed-bits", "5"]).exit_code == 2
    result = CliRunner().invoke(main, [*args, "--embed-bits", "4"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    (table,) = manifest["files"][1]["quantization"]["embedding_tables"].values()
    assert table["bits"] == 8 and "rows of 6 values" in table["why"]  # too narrow for 4 bits
