"""``edgernn export`` and ``edgernn predict``: JSON last line, file inputs, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from export_cases import bundle, make_checkpoint

from edgernn.checkpoint import save_checkpoint
from edgernn.cli import main


def _run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], input=stdin)


def _last_json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def test_export_then_predict(tmp_path):
    checkpoint = make_checkpoint("tag", "lstm", bidirectional=True)
    path = save_checkpoint(checkpoint, tmp_path / "tagger.pt")
    out = tmp_path / "bundle"
    args = ("--no-int8", "--exporter", "torchscript", "--json")
    payload = _last_json(_run("export", path, "-o", out, *args))
    assert payload["bundle"] == str(out)
    assert [f["path"] for f in payload["files"]] == ["model.onnx"]
    assert "note" in payload["metrics"]  # an untrained checkpoint records no data
    inputs = tmp_path / "sentences.txt"
    inputs.write_text("a b c\n\nd e\n", encoding="utf-8")
    payload = _last_json(_run("predict", out, "h a", inputs, "--json"))
    tokens = [p["tokens"] for p in payload["predictions"]]
    assert tokens == [["h", "a"], ["a", "b", "c"], ["d", "e"]]
    assert payload["precision"] == "fp32" and payload["task"] == "tag"


def test_predict_reads_stdin_and_generates():
    directory, _ = bundle("classify", "gru", False)
    from_stdin = _last_json(_run("predict", directory, "--json", stdin="abc\ncab\n"))
    from_args = _last_json(_run("predict", directory, "abc", "cab", "--json"))
    assert from_stdin["predictions"] == from_args["predictions"]
    assert len(from_args["predictions"]) == 2
    lm, _ = bundle("lm", "gru", False)
    payload = _last_json(_run("predict", lm, "ab", "--length", "5", "--json"))
    assert len(payload["predictions"][0]["text"]) == 5


def test_predict_numeric_from_npz(tmp_path):
    directory, _ = bundle("regress", "rnn", False)
    data = tmp_path / "x.npz"
    np.savez(data, x=np.ones((2, 4, 3)), lengths=np.array([4, 2]))
    payload = _last_json(_run("predict", directory, data, "--precision", "fp32", "--json"))
    assert [len(p["values"]) for p in payload["predictions"]] == [2, 2]


def test_predict_errors_are_one_line(tmp_path):
    directory, _ = bundle("regress", "rnn", False)
    for args, fragment in [
        ((tmp_path / "nothing",), "no such bundle directory"),
        ((tmp_path,), "not a bundle"),
        ((directory, "some text"), "give an existing .npz file"),
    ]:
        result = _run("predict", *args)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert result.output.startswith("Error: ") and fragment in result.output
    result = _run("export", tmp_path / "missing.pt", "-o", tmp_path / "b")
    assert result.exit_code == 1 and "no such checkpoint" in result.output


@pytest.mark.slow
def test_predict_command_runs_without_torch():
    directory, _ = bundle("classify", "gru", False)
    code = (
        "import sys; from edgernn.cli import main; "
        f"main(['predict', {str(directory)!r}, 'abc'], standalone_mode=False); "
        "assert 'torch' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\t")[0] in ("neg", "neu", "pos")


def test_int8_tolerance_decides_which_nodes_leave_integer_kernels(classify_csv, tmp_path):
    from edgernn.config import TrainConfig
    from edgernn.train import train

    trained = train(str(classify_csv), "classify", TrainConfig(epochs=1, progress=False), hidden=8)
    path = save_checkpoint(trained, tmp_path / "lstm.pt")

    def plan(*flags):
        out = tmp_path / "-".join(flags)
        _last_json(_run("export", path, "-o", out, "--exporter", "torchscript", *flags, "--json"))
        manifest = json.loads((out / "manifest.json").read_text())
        return next(f["quantization"] for f in manifest["files"] if f["role"] == "model" and
                    f["precision"] == "int8")  # fmt: skip

    measured = plan("--int8-tolerance", "0")
    assert measured["measured_on"] and measured["tolerance"] == 0
    costly = {node for node, drop in measured["sensitivity"].items() if drop > 0}
    assert measured["sensitivity"] and costly == set(measured["weight_only"])  # an LSTM model
    unguarded = plan("--int8-tolerance", "inf")
    assert unguarded["measured_on"] is None and unguarded["weight_only"] == {}


def test_batch_independent_int8_runs_no_integer_kernel(tmp_path):
    path = save_checkpoint(make_checkpoint("classify", "lstm"), tmp_path / "m.pt")
    out = tmp_path / "bundle"
    args = ("--batch-independent", "--no-eval", "--exporter", "torchscript", "--json")
    _last_json(_run("export", path, "-o", out, *args))
    manifest = json.loads((out / "manifest.json").read_text())
    int8 = [f for f in manifest["files"] if f["precision"] == "int8"]
    assert int8 and not any(f["quantization"]["batch_dependent"] for f in int8)
    assert not any("com.microsoft" in f["ops"] for f in int8)
