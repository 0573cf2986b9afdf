"""A user's own pickled ``nn.Module``: refused without --trust-pickle, exported and compressed
with it into ``custom`` bundles the runtime runs, and one-line errors for bad examples.

The modules are defined here, so ``torch.save`` pickles them by reference to this module,
which the loading test process can import.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from conftest import one_line_error, run_cli
from export_cases import make_checkpoint
from torch import nn

from edgernn.checkpoint import Checkpoint, save_checkpoint
from edgernn.errors import EdgeRNNError
from edgernn.export import ExportConfig
from edgernn.export.axes import dynamic_axes, parse_axes
from edgernn.export.own import export_own
from edgernn.own.load import OwnModel, load_own_module, load_with_example
from edgernn.report import schema_problems
from edgernn.runtime import Runtime

TOLERANCE = 1e-4


class TinyGRU(nn.Module):
    """A user's classifier: GRU over (B, T, 3) features, a linear head on the last step."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 16, batch_first=True)
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class TokensAndState(nn.Module):
    """Token ids, lengths and an initial state (layers, B, H): not all axes are (B, T)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.rnn = nn.LSTM(4, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, tokens, lengths, h0):
        out, (h, c) = self.rnn(self.embed(tokens), (h0, torch.zeros_like(h0)))
        last = out[torch.arange(out.size(0)), lengths - 1]
        return {"logits": self.head(last), "state": h}


class Box:
    """Picklable, but not a module."""


class _Planted:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.fixture
def saved(tmp_path):
    """A pickled TinyGRU and its example, (3, 5, 3) float32 under forward's argument name."""
    torch.manual_seed(0)
    module = TinyGRU().eval()
    path = tmp_path / "mine.pt"
    torch.save(module, path)
    example = tmp_path / "inputs.npz"
    np.savez(example, x=np.random.default_rng(0).normal(size=(3, 5, 3)).astype(np.float32))
    return module, path, example


def test_pickles_are_refused_without_the_flag_and_run_no_code(saved, tmp_path):
    _, path, example = saved
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save(_Planted(str(marker)), evil, pickle_module=pickle)
    for model in (evil, path):
        for command in ("export", "compress"):
            result = run_cli(command, model, "--example", example, "-o", tmp_path / "out")
            one_line_error(result, "--trust-pickle")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()
    with pytest.raises(EdgeRNNError, match="--trust-pickle"):
        load_own_module(evil, trust_pickle=False)
    assert not marker.exists()


def test_trusted_non_modules_and_checkpoints(tmp_path):
    box = tmp_path / "box.pt"
    torch.save(Box(), box)
    with pytest.raises(EdgeRNNError, match="not an nn.Module"):
        load_own_module(box, trust_pickle=True)
    # An edgernn checkpoint never needs the flag, and knows its inputs without an example.
    checkpoint = save_checkpoint(make_checkpoint("classify", "gru"), tmp_path / "c.pt")
    assert isinstance(load_with_example(checkpoint, True, None), Checkpoint)
    example = tmp_path / "inputs.npz"
    np.savez(example, x=np.zeros((1, 2), np.float32))
    with pytest.raises(EdgeRNNError, match="edgernn checkpoint"):
        load_with_example(checkpoint, True, example)


def test_export_cli_parity_and_int8(saved, tmp_path):
    module, path, example = saved
    out = tmp_path / "bundle"
    args = ("--trust-pickle", "--example", example, "--exporter", "torchscript", "--json")
    result = run_cli("export", path, "-o", out, *args, "--no-adopt")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"] == "custom" and manifest["metrics"] == {}
    assert manifest["vocab"] is None and manifest["labels"] is None
    fp32, int8 = manifest["files"]
    assert (fp32["path"], fp32["precision"], int8["precision"]) == ("model.onnx", "fp32", "int8")
    assert fp32["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["batch", "time", 3]}]
    assert fp32["outputs"] == [{"name": "output", "dtype": "float32", "shape": ["batch", 2]}]
    assert fp32["parity"]["max_abs_diff"] <= TOLERANCE
    assert int8["size_bytes"] < fp32["size_bytes"]
    assert (out / "model.int8.onnx").stat().st_size == int8["size_bytes"]
    # Another batch size and length than the example and the trace.
    x = np.random.default_rng(1).normal(size=(2, 9, 3)).astype(np.float32)
    (got,) = Runtime(out, "fp32").run("model", {"x": x}).values()
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= TOLERANCE


def test_compress_own_module(saved, tmp_path):
    module, path, example = saved
    out = tmp_path / "bundle"
    result = run_cli("compress", path, "--trust-pickle", "--example", example, "--quiet", "--json",
                  "--no-adopt", "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "accuracy not measured" in result.output
    payload = json.loads(result.output.strip().splitlines()[-1])
    assert payload["ratios"]["size"] < 1.0
    report = json.loads((out / "report.json").read_text())
    assert schema_problems(report) == []
    assert any("accuracy not measured" in note for note in report["notes"])
    teacher, fp32, int8 = report["models"]
    assert (teacher["format"], fp32["precision"], int8["precision"]) == ("torch", "fp32", "int8")
    assert teacher["params"] == sum(p.numel() for p in module.parameters())
    assert fp32["latency"] and int8["latency"] and int8["role"] == "final"
    x = np.load(example)["x"]
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    (got,) = Runtime(out, "fp32").run("model", {"x": x}).values()
    assert np.abs(got - want).max() <= TOLERANCE
    (got,) = Runtime(out, "int8").run("model", {"x": x}).values()
    assert got.shape == want.shape


def test_compress_refuses_training_options_before_work(saved, tmp_path):
    _, path, example = saved
    out = tmp_path / "bundle"
    args = ("--trust-pickle", "--example", example, "--no-adopt", "-o", out)
    result = run_cli("compress", path, *args, "--data", "builtin:sentiment", "--prune", "0.3")
    one_line_error(result, "drop --data, --prune")
    assert not out.exists()
    one_line_error(run_cli("export", path, *args, "--data", "x.csv"), "no task to score")


@pytest.mark.parametrize(
    "arrays, fragment",
    [
        ({"y": np.zeros((2, 4, 3), np.float32)}, "no array for forward's argument 'x'"),
        ({"arg0": np.zeros((1, 2, 4, 3), np.float32)}, "forward failed on the example"),
        ({"x": np.zeros((2, 4, 3))}, "save them as float32"),
        ({"x": np.zeros((2, 4, 3), np.float32), "z": np.ones(2)}, "does not take: ['z']"),
        ({"x": np.zeros((2, 4, 3), np.float32), "arg0": np.ones(2)}, "twice"),
    ],
)
def test_bad_examples_are_one_line(saved, tmp_path, arrays, fragment):
    _, path, _ = saved
    example = tmp_path / "bad.npz"
    np.savez(example, **arrays)
    result = run_cli("export", path, "--trust-pickle", "--example", example, "-o", tmp_path / "b")
    one_line_error(result, fragment)
    assert not (tmp_path / "b").exists()


def test_missing_example_is_one_line(saved, tmp_path):
    _, path, _ = saved
    result = run_cli("export", path, "--trust-pickle", "-o", tmp_path / "b")
    one_line_error(result, "needs --example")


def test_tokens_lengths_and_a_state_axis(tmp_path):
    torch.manual_seed(0)
    module = TokensAndState().eval()
    rng = np.random.default_rng(0)
    inputs = {
        "arg0": rng.integers(0, 10, size=(3, 6)),  # positional keys work too
        "lengths": np.array([6, 3, 1]),
        "h0": rng.normal(size=(1, 3, 8)).astype(np.float32),
    }
    example = tmp_path / "inputs.npz"
    np.savez(example, **inputs)
    model = OwnModel.prepare(module, example, "state.pt")
    config = ExportConfig(exporter="torchscript", int8=False)
    # h0 is read as a state, (-, batch, -), as "state" has its shape; --axes says so too.
    for name, axes in (("auto", None), ("bundle", parse_axes(["h0=-,batch,-"]))):
        out = export_own(model, tmp_path / name, config, axes)
        manifest = json.loads((out / "manifest.json").read_text())
        (entry,) = manifest["files"]
        # c restarts from zeros on every call: feeding "state" back is not streaming.
        assert entry["states"] == [] and "not streamed" in manifest["metrics"]["note"]
    shapes = {spec["name"]: spec["shape"] for spec in entry["inputs"] + entry["outputs"]}
    assert shapes == {
        "tokens": ["batch", "time"],
        "lengths": ["batch"],
        "h0": [1, "batch", 8],
        "logits": ["batch", 3],
        "state": [1, "batch", 8],
    }
    assert entry["parity"]["max_abs_diff"] <= TOLERANCE


@pytest.mark.parametrize("spec", ["h0", "h0=", "h0=batch,channel", "=batch"])
def test_bad_axes_specs(spec):
    with pytest.raises(EdgeRNNError, match="NAME=ROLE"):
        parse_axes([spec])


def test_default_axes_rule():
    inputs = {
        "x": np.zeros((3, 5, 2)),
        "lengths": np.array([5, 2, 1]),
        "y": np.zeros((3, 7)),
        "scale": np.ones(4),
    }
    assert dynamic_axes(inputs) == {
        "x": {0: "batch", 1: "time"},
        "lengths": {0: "batch"},
        "y": {0: "batch", 1: "y_time"},  # another length: its own symbol
        "scale": {},
    }
    assert dynamic_axes(inputs, {"x": ("batch", "-", "-")})["x"] == {0: "batch"}
