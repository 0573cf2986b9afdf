import json
import subprocess
import sys
from dataclasses import fields

import pytest
import torch
from click.testing import CliRunner

from edgernn.cli import main
from edgernn.compress.config import CompressOptions
from edgernn.config import ModelSpec, TrainConfig

TINY = ["--hidden", "8", "--embed", "8", "--epochs", "1", "--quiet"]


def _run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_train_json_evaluate_and_generate(lm_txt, tmp_path):
    out = tmp_path / "lm.pt"
    result = _run("train", "--task", "lm", "--data", lm_txt, *TINY, "--json", "-o", out)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output.strip().splitlines()[-1])
    assert payload["checkpoint"] == str(out)
    assert set(payload["metrics"]["test"]) == {"perplexity", "bits_per_char"}
    result = _run("evaluate", out, "--json")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output.strip().splitlines()[-1])["metrics"]["test"]
    assert scores == pytest.approx(payload["metrics"]["test"])
    first = _run("generate", out, "--prefix", "the ", "--length", "30", "--seed", "3")
    again = _run("generate", out, "--prefix", "the ", "--length", "30", "--seed", "3")
    assert first.exit_code == 0 and first.output == again.output
    assert first.output.startswith("the ") and len(first.output.rstrip("\n")) >= 30


def test_seq2seq_defaults_to_bahdanau(seq2seq_tsv, tmp_path):
    result = _run(
        "train", "--task", "seq2seq", "--data", seq2seq_tsv, *TINY, "-o", tmp_path / "s.pt"
    )
    assert result.exit_code == 0, result.output
    assert torch.load(tmp_path / "s.pt", weights_only=True)["spec"]["attention"] == "bahdanau"


def _assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert fragment in result.output, result.output


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--task", "classify", "--data", "missing.csv"], "no such file"),
        (["--task", "sing", "--data", "x"], "Invalid value for '--task'"),
        (["--task", "lm", "--data", "builtin:sentiment"], "is a classify dataset"),
        (["--task", "lm", "--data", "builtin:nope"], "unknown builtin dataset"),
        (
            ["--task", "lm", "--data", "builtin:charlm", "--bidirectional"],
            "cannot be bidirectional",
        ),
        (
            ["--task", "classify", "--data", "builtin:sentiment", "--attention", "luong"],
            "only applies",
        ),
    ],
)
def test_bad_arguments_are_one_clear_line(args, fragment, tmp_path):
    _assert_one_line_error(_run("train", *args, "-o", tmp_path / "m.pt"), fragment)


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("sentence,label\nx,1\n", "expected a header with columns text,label"),
        ("text,label\n", "holds no examples"),
    ],
)
def test_bad_files_are_one_clear_line(content, fragment, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(content)
    result = _run("train", "--task", "classify", "--data", path, "-o", tmp_path / "m.pt")
    _assert_one_line_error(result, fragment)
    assert not (tmp_path / "m.pt").exists()


def test_label_missing_from_train_and_too_long_sequences(tmp_path):
    data = tmp_path / "split"
    data.mkdir()
    (data / "train.csv").write_text("text,label\na b,x\nb c,y\nc d,x\n")
    (data / "valid.csv").write_text("text,label\na,x\n")
    (data / "test.csv").write_text("text,label\na,z\n")
    result = _run("train", "--task", "classify", "--data", data, *TINY, "-o", tmp_path / "m.pt")
    _assert_one_line_error(result, "label 'z' in the test split never occurs")
    (data / "test.csv").write_text("text,label\na b c d e f,x\n")
    result = _run(
        "train",
        "--task",
        "classify",
        "--data",
        data,
        *TINY,
        "--max-len",
        "4",
        "-o",
        tmp_path / "m.pt",
    )
    _assert_one_line_error(result, "more than the model's max length 4")


def test_corrupt_and_newer_checkpoints(tmp_path, classify_csv):
    out = tmp_path / "m.pt"
    assert (
        _run("train", "--task", "classify", "--data", classify_csv, *TINY, "-o", out).exit_code == 0
    )
    payload = torch.load(out, weights_only=True)
    torch.save(payload | {"version": 99}, out)
    _assert_one_line_error(_run("evaluate", out), "newer than this edgernn reads")
    out.write_bytes(b"\x00garbage")
    _assert_one_line_error(_run("evaluate", out), "corrupt")
    _assert_one_line_error(_run("generate", tmp_path / "absent.pt"), "no such checkpoint")


def test_generate_refuses_other_tasks(tmp_path, classify_csv):
    out = tmp_path / "m.pt"
    _run("train", "--task", "classify", "--data", classify_csv, *TINY, "-o", out)
    _assert_one_line_error(_run("generate", out), "needs a language model")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without")
@pytest.mark.parametrize("command", ["train", "compress", "run"])
def test_device_cuda_without_a_gpu_is_one_line(command, tmp_path, regress_npz):
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[data]\nsource = "{regress_npz}"\ntask = "regress"\n')
    arguments = {
        "train": ["train", "--task", "regress", "--data", str(regress_npz)],
        "compress": ["compress", str(tmp_path / "missing.pt")],
        "run": ["run", str(recipe)],
    }[command]
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [*arguments, "--device", "cuda", "-o", str(out)])
    assert result.exit_code == 1
    assert "--device cuda: no CUDA GPU is available here" in result.output
    assert "Traceback" not in result.output and not out.exists()


@pytest.mark.slow
def test_the_configs_and_the_command_line_load_without_torch():
    # The CLI reads its defaults from the configs at import; predict must start without torch.
    modules = "edgernn.cli, edgernn.compress.config, edgernn.recipe.parse, edgernn.export.config"
    code = f"import sys, {modules}; assert 'torch' not in sys.modules and 'onnx' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def _defaults(command: str, *required: str) -> dict:
    """The values a command gets when only its required arguments are given (not run)."""
    return main.commands[command].make_context(command, list(required)).params


def test_flags_are_the_config_fields_with_their_defaults():
    compress = _defaults("compress", "teacher.pt", "-o", "out")
    for field in fields(CompressOptions):
        assert compress[field.name] == field.default, field.name
    train = _defaults("train", "--task", "lm", "--data", "corpus.txt", "-o", "lm.pt")
    shared = {"cell", "hidden", "layers", "embed", "pooling", "dropout", "max_len"}
    assert {name: train[name] for name in shared} == {n: getattr(ModelSpec, n) for n in shared}
    for name in ("epochs", "batch_size", "lr", "patience", "seed"):
        assert train[name] == getattr(TrainConfig, name), name
