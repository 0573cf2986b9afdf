"""Every user mistake gives one line on stderr and a non-zero exit: never a traceback, a hang
or a half-written output (README, Security and reliability). One case per class."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from edgernn.checkpoint import save_checkpoint
from edgernn.cli import main
from edgernn.config import ModelSpec, parameter_count
from edgernn.distill.student import count_params
from edgernn.errors import EdgeRNNError
from edgernn.export import ExportConfig, export_bundle
from edgernn.own.load import read_example
from edgernn.train import train


def cli(*args, stdin: bytes | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], input=stdin)


def one_line(result, code: int, *words: str) -> None:
    """Exit ``code``, exactly one stderr line holding ``words``, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert all(word in lines[0] for word in words), lines[0]
    assert "Traceback" not in result.output


def usage_error(result, *words: str) -> None:
    """click's convention for a bad flag value: exit 2, its usage text, one Error line."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and all(word in errors[0] for word in words), result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    rows = ["text,label"] + [f'"good film {i}",pos' for i in range(12)]
    rows += [f'"bad plot {i}",neg' for i in range(12)]
    (folder / "reviews.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    from edgernn.config import TrainConfig

    config = TrainConfig(epochs=1, progress=False)
    checkpoint = train(str(folder / "reviews.csv"), "classify", config, hidden=4, embed=2)
    return save_checkpoint(checkpoint, folder / "tiny.pt")


@pytest.fixture(scope="module")
def bundle(tiny: Path) -> Path:
    from edgernn.checkpoint import load_checkpoint

    out = tiny.parent / "bundle"
    export_bundle(load_checkpoint(tiny), out, config=ExportConfig(evaluate=False))
    return out


def edited(tiny: Path, tmp_path: Path, change) -> Path:
    payload = torch.load(tiny, weights_only=True)
    change(payload)
    torch.save(payload, tmp_path / "edited.pt")
    return tmp_path / "edited.pt"


FIRST = "encoder.embedding.weight"
DAMAGE = {
    "float hidden": (lambda p: p["spec"].update(hidden=8.5), "hidden must be int"),
    "bool layers": (lambda p: p["spec"].update(layers=True), "layers must be int"),
    "absurd hidden": (lambda p: p["spec"].update(hidden=10**9), "MAX_PARAMS"),
    "missing key": (lambda p: p["state_dict"].pop(FIRST), "missing"),
    "extra key": (lambda p: p["state_dict"].update(zzz=torch.zeros(2)), "unexpected"),
    "shape": (lambda p: p["state_dict"].update({FIRST: torch.zeros(3, 3)}), "shape [3, 3]"),
    "no vocab": (lambda p: p["data"].update(vocab=None), "vocab must be a list"),
    "state list": (lambda p: p.update(state_dict=[1]), "state_dict must be a dict"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_damaged_checkpoint_is_one_line(tiny, tmp_path, case):
    change, words = DAMAGE[case]
    path = edited(tiny, tmp_path, change)
    one_line(cli("evaluate", path), 1, "damaged checkpoint", words)


@pytest.mark.parametrize("task", ["classify", "tag", "lm", "regress", "seq2seq"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_parameter_count_is_the_built_models(task, cell):
    tokens = task != "regress"
    for bidirectional, layers in ((False, 1), (task != "lm", 2)):
        for attention in ("bahdanau", "luong") if task == "seq2seq" else (None,):
            spec = ModelSpec(
                task=task, cell=cell, layers=layers, bidirectional=bidirectional, hidden=5,
                embed=3, vocab_size=7 * tokens, input_size=2 * (not tokens), num_outputs=6,
                attention=attention,
            )  # fmt: skip
            assert parameter_count(spec) == count_params(spec)


def test_nan_weight_export_is_one_line(tiny, tmp_path):
    path = edited(tiny, tmp_path, lambda p: p["state_dict"][FIRST].view(-1).__setitem__(0, np.nan))
    one_line(cli("export", path, "-o", tmp_path / "b", "--no-eval"), 1, "NaN", FIRST)
    assert not (tmp_path / "b").exists()


FLAGS = {
    "lr inf": (("train", "--lr", "inf"), "--lr"),
    "lr nan": (("train", "--lr", "nan"), "--lr"),
    "seed 2**70": (("train", "--seed", 2**70), "--seed"),
    "generate temperature nan": (("generate", "--temperature", "nan"), "--temperature"),
    "compress temperature inf": (("compress", "--temperature", "inf"), "--temperature"),
}


@pytest.mark.parametrize("case", FLAGS)
def test_bad_number_flag_is_a_usage_error(tiny, tmp_path, case):
    (command, *flag), name = FLAGS[case]
    data = ("--task", "classify", "--data", tiny.parent / "reviews.csv")
    where = data if command == "train" else (tiny,)
    output = () if command == "generate" else ("-o", tmp_path / "out")
    usage_error(cli(command, *where, *flag, *output), name)
    assert not (tmp_path / "out").exists()


def test_huge_model_is_refused_before_allocating(tiny, tmp_path):
    data = tiny.parent / "reviews.csv"
    out = tmp_path / "big.pt"
    result = cli("train", "--task", "classify", "--data", data, "--hidden", 10**8, "-o", out)
    one_line(result, 1, "parameters", "MAX_PARAMS")
    assert not out.exists()


def test_output_under_a_file_is_one_line(tiny, tmp_path):
    blocker = tmp_path / "somefile.txt"
    blocker.write_text("x")
    data = tiny.parent / "reviews.csv"
    result = cli("train", "--task", "classify", "--data", data, "-o", blocker / "out.pt")
    one_line(result, 1, "somefile.txt is a file, not a folder")
    one_line(cli("export", tiny, "-o", blocker / "b"), 1, "is a file, not a folder")
    assert blocker.read_text() == "x"


def test_csv_field_over_the_csv_limit_is_one_line(bundle, tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("text\n" + "a" * 200_000 + "\n")
    one_line(cli("predict", bundle, path), 1, "big.csv", "field limit")


def test_invalid_utf8_on_stdin_under_c_locale(bundle):
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}
    command = [str(Path(sys.executable).parent / "edgernn"), "predict", str(bundle)]
    done = subprocess.run(command, input=b"good \xff film\n", capture_output=True, env=env)
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "<stdin>:1: not UTF-8" in lines[0]


def test_empty_file_and_empty_stdin_answer_alike(bundle, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    one_line(cli("predict", bundle, tmp_path / "empty.txt"), 1, "no inputs")
    one_line(cli("predict", bundle, stdin=b"\n \n"), 1, "no inputs")


def rehash(bundle: Path, manifest: dict) -> None:
    for entry in manifest["files"]:
        data = (bundle / entry["path"]).read_bytes()
        entry["sha256"], entry["size_bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_absurd_state_shape_in_manifest_is_one_line(bundle, tmp_path):
    copy = Path(shutil.copytree(bundle, tmp_path / "b"))
    manifest = json.loads((copy / "manifest.json").read_text())
    for entry in manifest["files"]:
        for spec in [*(entry.get("states") or []), *entry["inputs"]]:
            if spec.get("input", spec.get("name")).startswith("state"):
                spec["shape"][2] = 10**12
    rehash(copy, manifest)
    one_line(cli("predict", copy, "good film"), 1, "states[0].shape", "values per batch row")


def test_auto_precision_checks_every_graphs_io(bundle, tmp_path):
    copy = Path(shutil.copytree(bundle, tmp_path / "b"))
    graph = onnx.load(copy / "model.onnx")  # fp32: auto loads int8, yet this one is checked
    graph.graph.output[0].name = "renamed"
    graph.graph.node[-1].output[0] = "renamed"
    onnx.save(graph, copy / "model.onnx")
    rehash(copy, json.loads((copy / "manifest.json").read_text()))
    one_line(cli("predict", copy, "good film"), 1, "model.onnx", "differ from the manifest")


def test_example_npz_is_read_through_the_size_checked_reader(tmp_path):
    header = np.lib.format.header_data_from_array_1_0(np.zeros(2, "f4"))
    header["shape"] = (10**12,)  # 4 TB claimed, 8 bytes held
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive, archive.open("x.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(np.zeros(2, "f4").tobytes())
    with pytest.raises(EdgeRNNError, match="claims shape"):
        read_example(tmp_path / "huge.npz")
    np.savez_compressed(tmp_path / "zeros.npz", x=np.zeros((400, 1000, 200), "f4"))  # 320 MB
    assert (tmp_path / "zeros.npz").stat().st_size < 2_000_000
    with pytest.raises(EdgeRNNError, match="byte limit"):
        read_example(tmp_path / "zeros.npz")


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_fifo_or_device_as_data_says_what_it_is(tmp_path, kind):
    path = tmp_path / "pipe.csv"
    if kind == "fifo":
        os.mkfifo(path)  # opening it would block until a writer came
    else:
        path = Path("/dev/zero")
    result = cli("train", "--task", "classify", "--data", path, "-o", tmp_path / "m.pt")
    one_line(result, 1, "named pipe (FIFO)" if kind == "fifo" else "a device")
