"""Where the bytes are: stored bytes by part (embedding, recurrent, head), torch and ONNX."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from export_cases import VOCAB, make_checkpoint
from onnx import TensorProto, helper, numpy_helper

from edgernn.config import ModelSpec
from edgernn.export import build_graphs, quantize_int8, to_onnx
from edgernn.models import build_model
from edgernn.models.size import size_by_part
from edgernn.quantize import QuantPlan, apply_plan
from edgernn.report import ModelRow, build_report, schema_problems
from edgernn.report.html import render_html
from edgernn.report.markdown import render_markdown
from edgernn.report.onnx_parts import onnx_size_by_part
from edgernn.report.rows import PARTS

V, E, H = 40, 16, 24  # vocabulary, embedding width, hidden units


def _classifier(**overrides) -> torch.nn.Module:
    values = dict(task="classify", vocab_size=V, embed=E, hidden=H, num_outputs=3) | overrides
    torch.manual_seed(0)
    return build_model(ModelSpec(**values)).eval()


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def test_fp32_parts_split_every_tensor_byte():
    model = _classifier()
    parts = size_by_part(model)
    assert list(parts) == list(PARTS) and all(type(v) is int for v in parts.values())
    assert sum(parts.values()) == _bytes(model.state_dict().values())
    assert parts["embedding"] == V * E * 4
    assert parts["recurrent"] == _bytes(model.encoder.rnn.parameters())
    assert parts["head"] == _bytes(model.head.parameters())


def test_low_rank_projection_is_part_of_the_embedding():
    parts = size_by_part(_classifier(embed_rank=4))
    assert parts["embedding"] == (V * 4 + 4 * E) * 4


def test_a_tied_table_counts_once_as_the_embedding():
    model = _classifier(task="lm", num_outputs=V, hidden=E)
    model.head.weight = model.encoder.embedding.weight
    parts = size_by_part(model)
    assert parts["embedding"] == V * E * 4
    assert parts["head"] == V * 4  # the head's bias alone


def test_int8_model_counts_its_packed_int8_weights():
    model = _classifier()
    fp32 = size_by_part(model)
    int8 = size_by_part(apply_plan(model, QuantPlan(("encoder.embedding", "encoder.rnn", "head"))))
    rnn = model.encoder.rnn
    weights = [p for name, p in rnn.named_parameters() if name.startswith("weight")]
    biases = [p for name, p in rnn.named_parameters() if name.startswith("bias")]
    assert int8["recurrent"] == sum(w.numel() for w in weights) + _bytes(biases)
    assert int8["recurrent"] < 0.3 * fp32["recurrent"]
    # One byte per table value plus a float scale and zero point per row.
    assert int8["embedding"] == V * E + V * 8
    # The head's int8 weight, float bias, scale (float32) and zero point (int64).
    assert int8["head"] == 3 * H + 3 * 4 + 4 + 8


def _graph(cell: str, **sizes) -> tuple[torch.nn.Module, onnx.ModelProto]:
    checkpoint = make_checkpoint("classify", cell, **sizes)
    model = checkpoint.build()
    proto, _ = to_onnx(build_graphs(model)[0], prefer="torchscript")
    return model, proto


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_onnx_parts_of_an_exported_graph(cell, tmp_path):
    model, proto = _graph(cell)
    path = tmp_path / "model.onnx"
    onnx.save(proto, path)
    parts = onnx_size_by_part(path)
    table = len(VOCAB) * 6  # make_checkpoint's embedding width
    assert parts["embedding"] == table * 4
    assert parts["recurrent"] == size_by_part(model)["recurrent"]
    int8 = onnx_size_by_part(quantize_int8(proto))
    # One byte per table value plus the table's one scale and zero point.
    assert table < int8["embedding"] <= table + 8
    # A byte per weight; a GRU's weight-only rows also keep a 4-byte scale each, a third of
    # a row of 6-8 weights here (a few % of a real row).
    assert int8["recurrent"] < (0.35 if cell == "lstm" else 0.5) * parts["recurrent"]


def test_onnx_low_rank_projection_is_part_of_the_embedding():
    model, proto = _graph("lstm", embed_rank=3)
    assert onnx_size_by_part(proto)["embedding"] == size_by_part(model)["embedding"]
    int8 = onnx_size_by_part(quantize_int8(proto))
    values = len(VOCAB) * 3 + 3 * 6
    assert values < int8["embedding"] <= values + 16  # and their scales and zero points


def test_onnx_parts_of_a_foreign_4_bit_graph():
    # GatherBlockQuantized on a packed 4-bit table, a transposed weight-only int8 LSTM, a head.
    packed = helper.make_tensor("table", TensorProto.UINT4, [10, 32], [1] * 320)
    scales = numpy_helper.from_array(np.ones((10, 1), np.float32), "scales")
    w_int8 = numpy_helper.from_array(np.ones((1, 32, 16), np.int8), "w_int8")
    r = numpy_helper.from_array(np.ones((1, 32, 8), np.float32), "r")
    head = numpy_helper.from_array(np.ones((8, 2), np.float32), "head")
    nodes = [
        helper.make_node(
            "GatherBlockQuantized", ["table", "ids", "scales"], ["rows"], domain="com.microsoft"
        ),
        helper.make_node("Cast", ["w_int8"], ["w_t"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["w_t"], ["w"], perm=[0, 1, 2]),
        helper.make_node("Transpose", ["rows"], ["x"], perm=[1, 0, 2]),
        helper.make_node("RNN", ["x", "w", "r"], ["", "h"], hidden_size=8),
        helper.make_node("Squeeze", ["h"], ["last"]),
        helper.make_node("MatMul", ["last", "head"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "foreign",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "t"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 2])],
        [packed, scales, w_int8, r, head],
    )
    parts = onnx_size_by_part(helper.make_model(graph))
    assert parts == {"embedding": 160 + 40, "recurrent": 512 + 1024, "head": 64}


def _row(name: str, size_parts: dict | None) -> ModelRow:
    return ModelRow(name, "student", "fp32", 10, 10, 400, size_parts=size_parts)


def test_reports_show_where_the_bytes_are():
    rows = [_row("teacher", {"embedding": 300, "recurrent": 80, "head": 20}), _row("old", None)]
    report = build_report("classify", "accuracy", rows, [])
    assert schema_problems(report) == []
    markdown = render_markdown(report)
    assert "## Where the bytes are" in markdown
    assert "| teacher | 300 | 80 | 20 | 75.0 % |" in markdown
    assert "| old |" not in markdown.split("## Where the bytes are")[1]
    assert "<h2>Where the bytes are</h2>" in render_html(report)
    bad = report | {"models": [report["models"][0] | {"size_parts": [300]}]}
    assert schema_problems(bad) == ["model 'teacher': size_parts is list"]


def test_records_written_before_size_parts_still_load():
    # A checkpoint's stage rows load as ModelRow(**row) (Compressed.from_checkpoint).
    old = {k: v for k, v in _row("teacher", None).to_dict().items() if k != "size_parts"}
    assert ModelRow(**old).size_parts is None
    report = build_report("classify", "accuracy", [ModelRow(**old)], [])
    assert "Where the bytes are" not in render_markdown(report)
