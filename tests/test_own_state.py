"""A user's stateful ``forward(x, hidden)``: exported with its state as graph inputs/outputs.

References: PyTorch's outputs over the whole sequence, against the exported graph run over
chunks with the manifest's state pairs fed back, as an app streams it.
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from edgernn.bundle.manifest import read_manifest
from edgernn.errors import EdgeRNNError
from edgernn.export.config import ExportConfig
from edgernn.export.own import export_own
from edgernn.own.load import OwnModel


class ConvLSTM(nn.Module):
    """A conv front end (not adoptable), an LSTM taking and returning ``(h, c)``."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 1)
        self.lstm = nn.LSTM(4, 6, num_layers=2, batch_first=True)
        self.fc = nn.Linear(6, 2)

    def forward(self, x, hidden):
        x = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        out, hidden = self.lstm(x, hidden)
        return self.fc(out), hidden


class TimeMajorGRU(nn.Module):
    """A time-major GRU with one state tensor, returned first."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 5)
        self.fc = nn.Linear(5, 1)

    def forward(self, x, h0):
        out, h = self.gru(x, h0)
        return h, self.fc(out)


class DoublesItsState(ConvLSTM):
    """Returns twice the state it reached: not a state an app can feed back."""

    def forward(self, x, hidden):
        y, (h, c) = super().forward(x, hidden)
        return y, (2 * h, 2 * c)


def _export(tmp_path, module, example, axes=None):
    np.savez(tmp_path / "example.npz", **example)
    model = OwnModel.prepare(module.eval(), tmp_path / "example.npz", "mine.pt")
    directory = export_own(model, tmp_path / "bundle", ExportConfig(int8=False), axes)
    return read_manifest(directory), ort.InferenceSession(str(directory / "model.onnx"))


def _lstm_example(batch=2, steps=6):
    zeros = np.zeros((2, batch, 6), np.float32)
    x = np.random.default_rng(0).standard_normal((batch, steps, 3)).astype(np.float32)
    return {"x": x, "hidden.0": zeros, "hidden.1": zeros}


def test_an_lstm_state_tuple_streams_chunk_by_chunk_as_pytorch_runs_the_whole(tmp_path):
    torch.manual_seed(0)
    module = ConvLSTM()
    manifest, session = _export(tmp_path, module, _lstm_example())
    (entry,) = manifest["files"]
    assert entry["states"] == [
        {"input": "hidden.0", "output": "output_1_0", "shape": [2, "batch", 6]},
        {"input": "hidden.1", "output": "output_1_1", "shape": [2, "batch", 6]},
    ]
    # Another batch and length than the example's, three chunks of uneven length.
    x = np.random.default_rng(1).standard_normal((3, 11, 3)).astype(np.float32)
    state = {s["input"]: np.zeros((2, 3, 6), np.float32) for s in entry["states"]}
    names = [o.name for o in session.get_outputs()]
    outputs = []
    for chunk in np.split(x, [4, 5], axis=1):
        got = dict(zip(names, session.run(None, {"x": chunk} | state), strict=True))
        outputs.append(got["output_0"])
        state = {s["input"]: got[s["output"]] for s in entry["states"]}
    with torch.no_grad():
        zeros = torch.zeros(2, 3, 6)
        want, (h, c) = module(torch.from_numpy(x), (zeros, zeros))
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), want.numpy(), atol=1e-5)
    np.testing.assert_allclose(state["hidden.0"], h.numpy(), atol=1e-5)
    np.testing.assert_allclose(state["hidden.1"], c.numpy(), atol=1e-5)


def test_a_time_major_state_keeps_its_batch_axis_in_the_middle(tmp_path):
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((7, 2, 3)).astype(np.float32)
    example = {"x": x, "h0": np.zeros((1, 2, 5), np.float32)}
    manifest, _ = _export(tmp_path, TimeMajorGRU(), example, {"x": ("time", "batch", "-")})
    (state,) = manifest["files"][0]["states"]
    assert state == {"input": "h0", "output": "output_0", "shape": [1, "batch", 5]}


def test_outputs_that_are_not_the_next_state_do_not_stream(tmp_path):
    torch.manual_seed(0)
    manifest, _ = _export(tmp_path, DoublesItsState(), _lstm_example())
    assert manifest["files"][0]["states"] == []
    assert "not streamed" in manifest["metrics"]["note"]


def test_a_tuple_with_a_gap_in_its_items_is_one_line(tmp_path):
    example = _lstm_example()
    example["hidden.2"] = example.pop("hidden.1")
    np.savez(tmp_path / "example.npz", **example)
    with pytest.raises(EdgeRNNError, match=r"keyed hidden\.0, hidden\.1, \.\.\. with no gaps"):
        OwnModel.prepare(ConvLSTM(), tmp_path / "example.npz", "mine.pt")


def test_the_manifest_is_valid_json_an_app_reads(tmp_path):
    torch.manual_seed(0)
    _export(tmp_path, ConvLSTM(), _lstm_example())
    raw = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    inputs = [spec["name"] for spec in raw["files"][0]["inputs"]]
    assert inputs == ["x", "hidden.0", "hidden.1"]
