"""``edgernn bench`` on a streaming ONNX model edgernn did not make (a VAD-like LSTM).

The model takes fixed 512-sample chunks, so bench must time the example's shapes as given,
vary only the axes ``--axes`` names, and report the real-time factor ``--chunk-ms`` asks for.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from edgernn.bench import BenchConfig, candidates_from_paths
from edgernn.bench.inputs import as_given, make_feeds
from edgernn.cli import main
from edgernn.errors import EdgeRNNError
from edgernn.report.schema import schema_problems

CHUNK, FEATURES, HIDDEN = 512, 16, 8  # 512 samples: 32 ms of 16 kHz audio
FAST = ["--min-iters", "5", "--min-time", "0.02", "--quiet"]
STATE_AXES = ["--axes", "input=batch,-", "--axes", "state=-,batch,-"]


def _weights() -> list:
    rng = np.random.default_rng(0)
    shapes = {
        "W_in": (CHUNK, FEATURES),
        "W": (1, 4 * HIDDEN, FEATURES),
        "R": (1, 4 * HIDDEN, HIDDEN),
        "B": (1, 8 * HIDDEN),
        "W_out": (HIDDEN, 1),
    }
    arrays = {name: 0.1 * rng.standard_normal(shape) for name, shape in shapes.items()}
    inits = [numpy_helper.from_array(a.astype(np.float32), k) for k, a in arrays.items()]
    inits.append(numpy_helper.from_array(np.array(16000.0, dtype=np.float32), "rate"))
    for name, value in (("zero", [0]), ("one", [1]), ("two", [2])):
        inits.append(numpy_helper.from_array(np.array(value, dtype=np.int64), name))
    return inits


def _lstm_step_nodes() -> list:
    """One LSTM step over the chunk's features from (h, c) = state; stateN is the new pair.

    ONNX Runtime's LSTM refuses a state whose batch differs from the chunk's, as a real
    streaming model does.
    """
    node = helper.make_node
    return [
        node("Unsqueeze", ["features", "zero"], ["step"]),  # (1, B, F): one time step
        node("Slice", ["state", "zero", "one", "zero"], ["h0"]),  # (1, B, H)
        node("Slice", ["state", "one", "two", "zero"], ["c0"]),
        node("LSTM", ["step", "W", "R", "B", "", "h0", "c0"], ["", "h1", "c1"], hidden_size=HIDDEN),
        node("Concat", ["h1", "c1"], ["stateN"], axis=0),
        node("Squeeze", ["h1", "zero"], ["h"]),
    ]


def vad_onnx(path: Path) -> Path:
    """input [B, 512] (symbolic dims, as exporters write them), state [2, B, 8], sr scalar."""
    node = helper.make_node
    nodes = [
        node("Cast", ["sr"], ["sr_f"], to=TensorProto.FLOAT),
        node("Div", ["sr_f", "rate"], ["scale"]),  # uses sr, as a real VAD picks its filters
        node("MatMul", ["input", "W_in"], ["projected"]),  # needs exactly 512 samples
        node("Mul", ["projected", "scale"], ["features"]),
        *_lstm_step_nodes(),
        node("MatMul", ["h", "W_out"], ["logit"]),
        node("Sigmoid", ["logit"], ["output"]),
    ]
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, None]),
        helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, None, HIDDEN]),
        helper.make_tensor_value_info("sr", TensorProto.INT64, []),
    ]
    outputs = [
        helper.make_tensor_value_info("output", TensorProto.FLOAT, [None, 1]),
        helper.make_tensor_value_info("stateN", TensorProto.FLOAT, [2, None, HIDDEN]),
    ]
    graph = helper.make_graph(nodes, "vad", inputs, outputs, _weights())
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8  # loadable by older ONNX Runtime builds too
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


@pytest.fixture
def vad(tmp_path) -> tuple[Path, Path]:
    """The model and an example chunk: one stream of 512 samples, a zero state, 16 kHz."""
    model = vad_onnx(tmp_path / "vad.onnx")
    example = tmp_path / "example.npz"
    rng = np.random.default_rng(1)
    np.savez(
        example,
        input=rng.standard_normal((1, CHUNK)).astype(np.float32),
        state=np.zeros((2, 1, HIDDEN), dtype=np.float32),
        sr=np.array(16000, dtype=np.int64),
    )
    return model, example


def _run(*args) -> object:
    return CliRunner().invoke(main, ["bench", *[str(a) for a in args]])


def _report(out: Path) -> dict:
    report = json.loads((out / "report.json").read_text())
    assert schema_problems(report) == []
    return report


def _assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert fragment in result.output.strip().splitlines()[-1], result.output


@pytest.mark.slow
def test_example_shapes_are_timed_as_given(vad, tmp_path):
    model, example = vad
    out = tmp_path / "report"
    result = _run(model, "--example", example, "--chunk-ms", 32, *FAST, "-o", out)
    assert result.exit_code == 0, result.output
    (row,) = _report(out)["models"]
    (entry,) = row["latency"]  # no batch or length grid: one point, the example's
    assert entry["shapes"] == {"input": [1, CHUNK], "state": [2, 1, HIDDEN], "sr": []}
    assert entry["batch"] is None and entry["seq_len"] is None
    assert 0 < entry["p50_ms"] <= entry["p90_ms"] <= entry["p99_ms"]
    assert entry["chunk_ms"] == 32.0
    assert entry["real_time_factor"] == pytest.approx(entry["p50_ms"] / 32.0)
    assert entry["real_time_factor_p99"] == pytest.approx(entry["p99_ms"] / 32.0)
    assert row["size_bytes"] == model.stat().st_size and row["peak_rss_mb"] is not None
    markdown = (out / "report.md").read_text()
    assert "RTF" in markdown
    assert "RTF" in result.output  # the console line quotes it too


@pytest.mark.slow
def test_axes_vary_only_the_axes_they_name(vad, tmp_path):
    model, example = vad
    out = tmp_path / "report"
    args = [model, "--example", example, *STATE_AXES, "--batch-sizes", "1,3", "--seq-lens", "7"]
    result = _run(*args, "--chunk-ms", 32, *FAST, "-o", out)
    assert result.exit_code == 0, result.output
    latency = _report(out)["models"][0]["latency"]
    shapes = {e["batch"]: e["shapes"] for e in latency}
    assert shapes == {
        1: {"input": [1, CHUNK], "state": [2, 1, HIDDEN], "sr": []},
        3: {"input": [3, CHUNK], "state": [2, 3, HIDDEN], "sr": []},
    }  # the 512 axis and the scalar stay; --seq-lens has no axis to vary
    assert {e["seq_len"] for e in latency} == {None}
    assert all(e["real_time_factor"] > 0 for e in latency)


@pytest.mark.slow
def test_a_state_left_out_of_axes_is_one_clear_line(vad, tmp_path):
    model, example = vad
    args = [model, "--example", example, "--axes", "input=batch,-", "--batch-sizes", "2"]
    result = _run(*args, *FAST, "-o", tmp_path / "r")
    _assert_one_line_error(result, "needs --axes too")


@pytest.mark.slow
def test_without_example_the_chunk_axis_failure_says_to_pass_one(vad, tmp_path):
    result = _run(vad[0], "--seq-lens", "16", "--batch-sizes", "1", *FAST, "-o", tmp_path / "r")
    _assert_one_line_error(result, "pass --example")


@pytest.mark.parametrize("value", ["0", "-32", "nan", "inf"])
def test_bad_chunk_ms_is_one_line(vad, value, tmp_path):
    model, example = vad
    result = _run(model, "--example", example, "--chunk-ms", value, *FAST, "-o", tmp_path / "r")
    _assert_one_line_error(result, "--chunk-ms")
    with pytest.raises(EdgeRNNError, match="--chunk-ms"):
        BenchConfig(chunk_ms=float(value))


@pytest.mark.parametrize(
    "axes, example, fragment",
    [
        ({"audio": ("batch", "-")}, True, "does not take"),
        ({"input": ("batch",)}, True, "gives 1 roles"),
        ({"state": ("batch", "-", "-")}, True, "fixed to 2"),
        ({"input": ("batch", "-")}, False, "needs --example"),
    ],
)
def test_bad_axes_are_refused_before_timing(vad, axes, example, fragment):
    model, npz = vad
    with pytest.raises(EdgeRNNError, match=fragment):
        candidates_from_paths([str(model)], example=str(npz) if example else None, axes=axes)


def test_inputs_the_example_lacks_take_its_sizes_unless_the_grid_varies_them():
    inputs = [
        {"name": "x", "dtype": "float32", "shape": ["seq", "batch", 3]},
        {"name": "sequence_lens", "dtype": "int32", "shape": ["batch"]},
        {"name": "sr", "dtype": "int64", "shape": []},
    ]
    example = {"x": np.ones((5, 1, 3), dtype=np.float32), "sr": np.array(16000)}
    shapes = {name: array.shape for name, array in example.items()}
    rng = np.random.default_rng(0)
    plan = as_given(inputs, shapes, {})
    assert plan.varies == (False, False) and plan.given == {"batch": 1, "seq": 5}
    feeds = make_feeds(inputs, plan.roles, plan.feed_point((None, None)), rng, example)
    assert feeds["x"].shape == (5, 1, 3) and feeds["sr"].shape == ()  # a scalar stays 0-d
    assert feeds["sequence_lens"].tolist() == [5]  # made up, at the example's own length
    plan = as_given(inputs, shapes, {"x": ("time", "batch", "-")})
    assert plan.varies == (True, True)
    feeds = make_feeds(inputs, plan.roles, plan.feed_point((2, 8)), rng, example)
    assert feeds["x"].shape == (8, 2, 3) and feeds["sequence_lens"].tolist() == [8, 8]


def test_an_example_the_graph_does_not_fit_is_refused():
    inputs = [{"name": "input", "dtype": "float32", "shape": [None, CHUNK]}]
    with pytest.raises(EdgeRNNError, match="fixes it to 512"):
        as_given(inputs, {"input": (1, 256)}, {})
    with pytest.raises(EdgeRNNError, match="has 1 dims but the model input has 2"):
        as_given(inputs, {"input": (CHUNK,)}, {})


def test_axes_refuse_an_edgernn_bundle(tmp_path):
    from export_cases import bundle

    directory = shutil.copytree(bundle("classify", "gru", False)[0], tmp_path / "bundle")
    with pytest.raises(EdgeRNNError, match="--axes is for ONNX files edgernn did not make"):
        candidates_from_paths([str(directory)], axes={"inputs": ("batch", "time")})


@pytest.mark.slow
def test_chunk_ms_gives_a_bundles_step_graph_its_real_time_factor(tmp_path):
    from export_cases import bundle

    directory = bundle("classify", "gru", False)[0]
    out = tmp_path / "report"
    grid = ["--batch-sizes", "1", "--seq-lens", "8", "--chunk-ms", 80]
    result = _run(directory, *grid, *FAST, "-o", out)
    assert result.exit_code == 0, result.output
    rows = _report(out)["models"]
    step = [r for r in rows if r["name"].split()[0].endswith("step.onnx")]
    whole = [r for r in rows if r["name"].split()[0].endswith("model.onnx")]
    assert step and whole
    for entry in (e for r in step for e in r["latency"]):
        assert entry["seq_len"] == 8
        assert entry["real_time_factor"] == pytest.approx(entry["p50_ms"] / 80.0)
    assert all("real_time_factor" not in e for r in whole for e in r["latency"])
