"""``edgernn bench`` end to end: subprocess workers, report files, errors, CUDA (skipped)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from edgernn.bench import TimingConfig, candidates_from_paths
from edgernn.bench.harness import CPU_ONLY_INT8
from edgernn.checkpoint import save_checkpoint
from edgernn.cli import main
from edgernn.config import TrainConfig
from edgernn.errors import EdgeRNNError
from edgernn.report.schema import latency_at, schema_problems
from edgernn.train import train

FAST = ["--batch-sizes", "1,2", "--seq-lens", "4,8", "--min-iters", "5", "--min-time", "0.02"]
FAST_TIMING = TimingConfig(warmup=2, min_iters=5, min_time_s=0.05)
FEATURES, HIDDEN = 3, 8


def lstm_onnx(path: Path, x_dims=("seq", "batch", FEATURES)) -> Path:
    """One ONNX LSTM node (time-major, ``sequence_lens`` input) and a MatMul head."""
    rng = np.random.default_rng(0)
    weights = {
        "W": rng.standard_normal((1, 4 * HIDDEN, FEATURES)),
        "R": rng.standard_normal((1, 4 * HIDDEN, HIDDEN)),
        "B": rng.standard_normal((1, 8 * HIDDEN)),
        "P": rng.standard_normal((HIDDEN, 2)),
    }
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()]
    inits.append(numpy_helper.from_array(np.array([0], dtype=np.int64), "axes"))
    nodes = [
        helper.make_node(
            "LSTM", ["x", "W", "R", "B", "sequence_lens"], ["Y", "Y_h"], hidden_size=HIDDEN
        ),
        helper.make_node("Squeeze", ["Y_h", "axes"], ["h"]),
        helper.make_node("MatMul", ["h", "P"], ["logits"]),
    ]
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_dims)),
        helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["batch"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])]
    graph = helper.make_graph(nodes, "lstm", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # loadable by older ONNX Runtime builds too
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory) -> dict[str, Path]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = tmp_path_factory.mktemp("onnx")
    fp32 = lstm_onnx(folder / "lstm.onnx")
    int8 = folder / "lstm.int8.onnx"
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, op_types_to_quantize=["LSTM"])
    return {"fp32": fp32, "int8": int8}


@pytest.fixture
def tiny_checkpoint(classify_csv, tmp_path) -> Path:
    checkpoint = train(
        str(classify_csv), "classify", TrainConfig(epochs=1, progress=False), hidden=8, embed=8
    )
    return save_checkpoint(checkpoint, tmp_path / "tiny.pt")


def _run(*args) -> object:
    return CliRunner().invoke(main, ["bench", *[str(a) for a in args]])


@pytest.mark.slow
def test_cli_bench_checkpoint_and_onnx(tiny_checkpoint, onnx_models, classify_csv, tmp_path):
    out = tmp_path / "report"
    models = [tiny_checkpoint, onnx_models["fp32"], onnx_models["int8"]]
    result = _run(*models, *FAST, "--data", classify_csv, "--quiet", "--json", "-o", out)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["report"] == str(out / "report.json")
    report = json.loads((out / "report.json").read_text())
    assert schema_problems(report) == []
    assert report["task"] == "classify" and report["metric"]["name"] == "accuracy"
    rows = {(r["format"], r["precision"]): r for r in report["models"]}
    assert list(rows) == [("torch", "fp32"), ("torch", "int8"), ("onnx", "fp32"), ("onnx", "int8")]
    for row in report["models"]:
        assert len(row["latency"]) == 4  # batch 1,2 x length 4,8 x 1 thread
        assert all(e["iterations"] >= 5 and e["p50_ms"] <= e["p99_ms"] for e in row["latency"])
        assert row["peak_rss_baseline_mb"] > 0
        assert row["peak_rss_mb"] == pytest.approx(
            row["peak_rss_raw_mb"] - row["peak_rss_baseline_mb"]
        )
        assert row["nonzero_params"] <= row["params"]
    assert rows["torch", "int8"]["size_bytes"] < rows["torch", "fp32"]["size_bytes"]
    assert 0 <= rows["torch", "fp32"]["metric"] <= 100
    assert rows["onnx", "fp32"]["metric"] is None  # a bare ONNX file has no task to score
    assert rows["onnx", "fp32"]["params"] == 4 * HIDDEN * (FEATURES + HIDDEN + 2) + 2 * HIDDEN + 1
    markdown = (out / "report.md").read_text()
    assert "## Summary" in markdown and "## Latency grid" in markdown
    assert "| model | role |" in markdown and "tiny.pt torch int8" in markdown
    page = (out / "report.html").read_text()
    assert page.count("<img") >= 3 and "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporaries


@pytest.mark.slow
def test_example_inputs_fix_underivable_dims(tmp_path):
    # A symbolic feature width cannot be made up: the example array gives it.
    path = lstm_onnx(tmp_path / "free.onnx", x_dims=("seq", "batch", "features"))
    result = _run(path, *FAST, "--quiet", "-o", tmp_path / "r1")
    _assert_one_line_error(result, "pass --example")
    example = tmp_path / "inputs.npz"
    np.savez(example, x=np.ones((5, 1, FEATURES), dtype=np.float32))
    # The example's shapes are timed as given unless --axes says which axes may vary.
    axes = ("--axes", "x=time,batch,-")
    result = _run(path, *FAST, "--example", example, *axes, "--quiet", "-o", tmp_path / "r2")
    assert result.exit_code == 0, result.output
    latency = json.loads((tmp_path / "r2" / "report.json").read_text())["models"][0]["latency"]
    shapes = {(e["batch"], e["seq_len"]): e["shapes"] for e in latency}
    assert shapes[2, 8] == {"x": [8, 2, FEATURES], "sequence_lens": [2]}


def _assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert fragment in result.output.strip().splitlines()[-1], result.output


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["missing.pt"], "no such file or directory"),
        (["{csv}"], "unknown model file type '.csv'"),
        (["{csv}", "--batch-sizes", "1,x"], "comma-separated integers"),
    ],
)
def test_bad_input_is_one_line(args, fragment, classify_csv, tmp_path):
    args = [a.format(csv=classify_csv) for a in args]
    _assert_one_line_error(_run(*args, "--quiet", "-o", tmp_path / "r"), fragment)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_is_one_line(onnx_models, tmp_path):
    result = _run(onnx_models["fp32"], "--device", "cuda", "-o", tmp_path / "r")
    _assert_one_line_error(result, "no CUDA GPU available")


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_measures_fp32_fp16_and_says_int8_is_cpu_only(tiny_checkpoint, onnx_models, tmp_path):
    out = tmp_path / "cuda"
    result = _run(
        tiny_checkpoint, onnx_models["fp32"], *FAST, "--device", "cuda", "--quiet", "-o", out
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert schema_problems(report) == [] and report["environment"]["gpu"]
    rows = {(r["format"], r["precision"]): r for r in report["models"]}
    for precision in ("fp32", "fp16"):
        row = rows["torch", precision]
        assert row["cuda_max_allocated_mb"] > 0
        assert {e["device"] for e in row["latency"]} == {"cuda"}
    assert (
        rows["torch", "int8"]["skipped"] == CPU_ONLY_INT8 and not rows["torch", "int8"]["latency"]
    )
    assert CPU_ONLY_INT8 in (out / "report.md").read_text()
    onnx_row = rows["onnx", "fp32"]
    assert onnx_row["latency"] or "CUDAExecutionProvider" in onnx_row["skipped"]
    point = report["reference"]
    assert latency_at(rows["torch", "fp16"], point)["p50_ms"] > 0


def test_a_bundle_is_verified_before_it_is_benched(tmp_path):
    import shutil

    from export_cases import bundle

    directory = shutil.copytree(bundle("classify", "gru", False)[0], tmp_path / "bundle")
    found = candidates_from_paths([str(directory)])
    assert {(c.format, c.role, c.task, c.precision) for c in found} == {
        # benched on its own a bundle is a peer: "final" only for what compress/run made
        ("onnx", "peer", "classify", precision)
        for precision in ("fp32", "int8")
    }
    graph = directory / "model.onnx"
    graph.write_bytes(graph.read_bytes() + b"\0")
    with pytest.raises(EdgeRNNError, match="does not match its sha256"):
        candidates_from_paths([str(directory)])
    (directory / "manifest.json").unlink()
    with pytest.raises(EdgeRNNError, match="no manifest.json"):
        candidates_from_paths([str(directory)])


@pytest.mark.slow
def test_bench_scores_a_bundles_graphs_through_the_runtime(classify_csv, tmp_path):
    from edgernn.export import ExportConfig, export_bundle
    from edgernn.export.scoring import bundle_metrics

    checkpoint = train(str(classify_csv), "classify", TrainConfig(epochs=1, progress=False))
    bundle = export_bundle(checkpoint, tmp_path / "b", config=ExportConfig(evaluate=False))
    result = _run(bundle, *FAST, "--data", classify_csv, "--quiet", "-o", tmp_path / "r")
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "r" / "report.json").read_text())["models"]
    scored = {row["precision"]: row["metrics"] for row in rows if row["format"] == "onnx"}
    want = {p: bundle_metrics(bundle, p, str(classify_csv)) for p in ("fp32", "int8")}
    assert scored == want and want["fp32"] == pytest.approx(checkpoint.metrics["test"])
