"""Each bundle file names what ONNX Runtime it needs: ``ops`` and ``min_onnxruntime``."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from export_cases import bundle
from torch import nn

from edgernn.bundle.schema import check_manifest
from edgernn.errors import EdgeRNNError
from edgernn.export import ExportConfig
from edgernn.export.own import export_own
from edgernn.export.requirements import release_key
from edgernn.own.load import OwnModel

INSTALLED = release_key(".".join(onnxruntime.__version__.split(".")[:2]))


class TinyLSTM(nn.Module):
    """A user's own regressor: LSTM over (B, T, 3) features, a linear head on every step."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(3, 8, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.rnn(x)[0])


def _assert_requirements_cover_the_graphs(directory) -> dict:
    manifest = json.loads((directory / "manifest.json").read_text())
    check_manifest(manifest, directory / "manifest.json")
    for entry in manifest["files"]:
        proto, ops = onnx.load(directory / entry["path"]), entry["ops"]
        imported = {item.domain or "ai.onnx": item.version for item in proto.opset_import}
        assert ops["ai.onnx"] == imported["ai.onnx"] == 18
        for node in proto.graph.node:
            domain = node.domain or "ai.onnx"
            assert domain in ops, (entry["path"], domain)
            assert domain == "ai.onnx" or node.op_type in ops[domain], (entry["path"], node)
        assert INSTALLED >= release_key(entry["min_onnxruntime"]) >= (1, 14)  # opset 18
        if entry["precision"] == "fp32":
            assert set(ops) == {"ai.onnx"}, entry["path"]
    versions = [release_key(entry["min_onnxruntime"]) for entry in manifest["files"]]
    assert release_key(manifest["min_onnxruntime"]) == max(versions)
    return manifest


@pytest.mark.parametrize(
    "case",
    [("classify", "lstm", True), ("lm", "gru", False), ("regress", "rnn", False)],
)
def test_each_file_names_the_ops_and_onnxruntime_it_needs(case):
    directory, _ = bundle(*case, exporter="torchscript")
    manifest = _assert_requirements_cover_the_graphs(directory)
    contrib = {op for entry in manifest["files"] for op in entry["ops"].get("com.microsoft", [])}
    # ORT has integer LSTM kernels only; GRU and RNN weights are int8, computed in float.
    assert contrib == ({"DynamicQuantizeLSTM"} if case[1] == "lstm" else set())


def test_seq2seq_files_name_their_ops():
    directory, _ = bundle("seq2seq", "lstm", True, "bahdanau", "torchscript")
    manifest = _assert_requirements_cover_the_graphs(directory)
    int8 = [entry for entry in manifest["files"] if entry["precision"] == "int8"]
    assert {entry["role"] for entry in int8} == {"encoder", "decoder"}
    assert all(entry["ops"]["com.microsoft"] == ["DynamicQuantizeLSTM"] for entry in int8)


def test_own_model_files_name_their_ops(tmp_path):
    torch.manual_seed(0)
    example = tmp_path / "inputs.npz"
    np.savez(example, x=np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32))
    model = OwnModel.prepare(TinyLSTM().eval(), example, "mine.pt")
    directory = export_own(model, tmp_path / "bundle", ExportConfig(exporter="torchscript"))
    manifest = _assert_requirements_cover_the_graphs(directory)
    assert [entry["precision"] for entry in manifest["files"]] == ["fp32", "int8"]


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("ops", ["DynamicQuantizeLSTM"], "field files[0].ops must be an object"),
        ("ops", {"ai.onnx": "18"}, "field files[0].ops.ai.onnx must be a positive opset"),
        ("ops", {"com.microsoft": "LSTM"}, "ops.com.microsoft must be a list of operator"),
        ("min_onnxruntime", 1.14, "field files[0].min_onnxruntime must be a release"),
        ("min_onnxruntime", "latest", "field files[0].min_onnxruntime must be a release"),
    ],
)
def test_a_malformed_requirement_is_one_clear_line(field, value, fragment):
    directory, _ = bundle("classify", "gru", False, exporter="torchscript")
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["files"][0][field] = value
    with pytest.raises(EdgeRNNError, match=re.escape(fragment)) as error:
        check_manifest(manifest, directory / "manifest.json")
    assert "\n" not in str(error.value)
