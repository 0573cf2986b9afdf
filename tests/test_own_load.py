"""Loading what users actually save (edgernn.own.source, .modelfile, .build): a model pickled
from a training script (classes in ``__main__``), one of an importable module, state dicts and
checkpoint dicts with the class that built them; each dead end one line saying what to do.

The files are written by a real script run in a subprocess, as ``python train.py``: that is
how a ``__main__`` pickle arises. Its ``if __name__ == "__main__":`` block writes a marker,
so a load that ran the block would leave one behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from export_cases import make_checkpoint

from edgernn.checkpoint import Checkpoint, save_checkpoint
from edgernn.cli import main
from edgernn.errors import EdgeRNNError
from edgernn.own import OwnSource, load_model, load_with_example, parse_model_args
from edgernn.own.modelfile import MODULE_NAME

VOCAB = {"<pad>": 0, "a": 1, "b": 2, "c": 3, "d": 4, "e": 5}
MODEL_ARGS = {"vocab_size": len(VOCAB), "hidden": 12}
TAGGER = {"model_file": "train.py", "model_class": "Tagger"}  # relative to the saved folder

# The user's model classes, as a module of their project
MODELS = """
import torch
from torch import nn


class Tagger(nn.Module):
    def __init__(self, vocab_size, hidden=16):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, 6)
        self.rnn = nn.GRU(6, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 3)

    def forward(self, tokens):
        out, _ = self.rnn(self.embed(tokens))
        return self.head(out)


class Unused(nn.Module):
    pass
"""
# A training script defining them: top-level argparse and a log line, training under the guard.
SCRIPT = (
    MODELS
    + """
import argparse
import pathlib

import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--hidden", type=int, default=12)
args = parser.parse_args()  # would choke on pytest's or edgernn's sys.argv
with open(pathlib.Path(__file__).with_name("imports.log"), "a") as log:
    log.write(__name__ + "\\n")

if __name__ == "__main__":
    HERE = pathlib.Path(__file__).parent  # wherever it runs from
    HERE.joinpath("trained.marker").write_text("the training block ran")
    torch.manual_seed(0)
    VOCAB = VOCAB_LITERAL
    model = Tagger(len(VOCAB), args.hidden).eval()
    weights = model.state_dict()
    torch.save(model, HERE / "full.pt")
    torch.save(weights, HERE / "state.pt")
    config = {"vocab_size": len(VOCAB), "hidden": args.hidden, "lr": 0.01}
    labels = ["O", "B", "I"]
    torch.save({"state_dict": weights, "config": config, "labels": labels}, HERE / "config.pt")
    torch.save({"model_state_dict": weights, "word_to_idx": VOCAB, "epoch": 3}, HERE / "vocab.pt")
    torch.save({"model": weights, "args": args}, HERE / "namespace.pt")  # needs --trust-pickle
    torch.save({f"module.{k}": v for k, v in weights.items()}, HERE / "parallel.pt")
    tokens = np.random.default_rng(0).integers(1, len(VOCAB), size=(2, 5))
    np.savez(HERE / "inputs.npz", tokens=tokens)
    with torch.no_grad():
        np.save(HERE / "want.npy", model(torch.from_numpy(tokens)).numpy())
""".replace("VOCAB_LITERAL", repr(VOCAB))
)

# Another project: the class in an importable module, the pickle saved by a script using it.
SAVER = """
import torch
import own_load_models

torch.save(own_load_models.Tagger(6).eval(), "module.pt")
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A folder with train.py and what running it saved; the marker removed again."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "train.py").write_text(SCRIPT)
    (folder / "own_load_models.py").write_text(MODELS)
    (folder / "save.py").write_text(SAVER)
    for script in ("train.py", "save.py"):
        subprocess.run([sys.executable, script], cwd=folder, check=True, capture_output=True)
    assert (folder / "trained.marker").exists()  # the guard is real: running it trains
    (folder / "trained.marker").unlink()
    return folder


@pytest.fixture(autouse=True)
def forget_user_modules():
    """Unpickling imports the user's module: forget it, so each test finds it afresh."""
    sys.modules.pop("own_load_models", None)
    yield
    sys.modules.pop("own_load_models", None)


def _outputs(module, saved: Path) -> np.ndarray:
    tokens = torch.from_numpy(np.load(saved / "inputs.npz")["tokens"])
    with torch.no_grad():
        return module(tokens).numpy()


def _same_model(own: OwnSource, saved: Path) -> None:
    """The saved weights exactly; the script's outputs up to float noise (threads differ)."""
    want = torch.load(saved / "state.pt", weights_only=True)
    got = own.module.state_dict()
    assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want)
    np.testing.assert_allclose(_outputs(own.module, saved), np.load(saved / "want.npy"), atol=1e-6)
    assert not own.module.training


def _imports(saved: Path) -> list[str]:
    return (saved / "imports.log").read_text().split()


def test_a_main_pickle_loads_with_its_script_which_does_not_train(saved):
    before, path, argv = _imports(saved), list(sys.path), list(sys.argv)
    own = load_model(saved / "full.pt", True, model_file=saved / "train.py")
    _same_model(own, saved)
    assert (own.kind, own.extras) == ("module", {})
    assert not (saved / "trained.marker").exists()  # the __main__ block did not run
    assert _imports(saved) == before + [MODULE_NAME]  # the top level did, once, as a module
    assert (sys.path, sys.argv) == (path, argv)
    assert MODULE_NAME not in sys.modules


def test_a_main_pickle_without_its_script_names_model_file(saved):
    with pytest.raises(EdgeRNNError, match=r"\(__main__\.Tagger\); give that script: --model-f"):
        load_model(saved / "full.pt", True)


def test_the_first_refusal_names_every_way_on(saved):
    with pytest.raises(EdgeRNNError) as error:
        load_model(saved / "full.pt")
    message = str(error.value)
    assert "it names __main__.Tagger" in message
    for step in ("--trust-pickle", "--example", "--model-file train.py", "--model-class"):
        assert step in message
    assert not (saved / "trained.marker").exists()


@pytest.mark.parametrize("run_from", ["pickle's folder", "current directory"])
def test_a_pickle_of_an_importable_module(saved, tmp_path, monkeypatch, run_from):
    if run_from == "current directory":  # the module here, the pickle elsewhere
        path = tmp_path / "module.pt"
        path.write_bytes((saved / "module.pt").read_bytes())
        monkeypatch.chdir(saved)
    else:
        path = saved / "module.pt"
        monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    own = load_model(path, True)
    assert type(own.module).__module__ == "own_load_models"
    assert sys.path == before
    assert not (saved / "trained.marker").exists()


def test_a_pickle_of_a_module_not_importable_here(saved, tmp_path, monkeypatch):
    path = tmp_path / "module.pt"
    path.write_bytes((saved / "module.pt").read_bytes())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(EdgeRNNError, match="'own_load_models'.*--model-file own_load_models.py"):
        load_model(path, True)
    # the file that defines it, under any name: its pickled module name maps to it
    assert load_model(path, True, model_file=saved / "own_load_models.py").kind == "module"


def test_a_state_dict_with_model_args_needs_no_trust(saved):
    code = {"model_file": saved / "train.py", "model_class": "Tagger", "model_args": MODEL_ARGS}
    own = load_model(saved / "state.pt", **code)
    _same_model(own, saved)
    assert (own.kind, own.model_args, own.extras) == ("state_dict", MODEL_ARGS, {})
    assert type(own.module).__name__ == "Tagger"
    assert not (saved / "trained.marker").exists()


def test_a_checkpoint_dict_builds_from_its_config_and_keeps_its_keys(saved):
    own = load_model(saved / "config.pt", model_file=saved / "train.py", model_class="Tagger")
    _same_model(own, saved)
    assert own.model_args == MODEL_ARGS  # "lr" is not an argument of Tagger: left out
    assert own.extras["labels"] == ["O", "B", "I"]
    assert own.extras["config"]["lr"] == 0.01


def test_model_args_go_over_the_checkpoint_config(saved):
    with pytest.raises(EdgeRNNError, match=r"Tagger\(vocab_size=6, hidden=4\), built with the "):
        load_model(
            saved / "config.pt",
            model_file=saved / "train.py",
            model_class="Tagger",
            model_args={"hidden": 4},
        )


def test_a_model_state_dict_with_its_vocabulary(saved):
    model = load_with_example(
        saved / "vocab.pt",
        False,
        saved / "inputs.npz",
        model_file=saved / "train.py",
        model_class="Tagger",
        model_args=MODEL_ARGS,
    )
    assert model.extras == {"word_to_idx": VOCAB, "epoch": 3}
    assert list(model.inputs) == ["tokens"]


def test_a_trusted_dict_with_objects_imports_the_model_file_once(saved):
    before = _imports(saved)
    own = load_model(
        saved / "namespace.pt",
        True,
        model_file=saved / "train.py",
        model_class="Tagger",
        model_args={"vocab_size": len(VOCAB)},  # with "hidden" from the pickled argparse args
    )
    _same_model(own, saved)
    assert own.model_args == MODEL_ARGS
    assert _imports(saved) == before + [MODULE_NAME]
    with pytest.raises(EdgeRNNError, match="it names argparse.Namespace.*--trust-pickle"):
        load_model(saved / "namespace.pt", model_file=saved / "train.py", model_class="Tagger")


def test_data_parallel_prefixes_are_taken_off(saved):
    code = {"model_file": saved / "train.py", "model_class": "Tagger", "model_args": MODEL_ARGS}
    _same_model(load_model(saved / "parallel.pt", **code), saved)


@pytest.mark.parametrize(
    "file, code, fragments",
    [
        (
            "state.pt",
            {},
            [
                "holds a state dict (7 tensors, e.g. 'embed.weight'); give the class that built "
                "it: --model-file models.py --model-class NAME [--model-args JSON]"
            ],
        ),
        (
            "vocab.pt",
            {"model_file": "train.py"},
            ["state dict in 'model_state_dict'", "--model-class NAME", "defines Tagger, Unused"],
        ),
        (
            "state.pt",
            {"model_file": "train.py", "model_class": "Tager"},
            ["--model-class Tager: not an nn.Module class in train.py", "defines Tagger, Unused"],
        ),
        (
            "state.pt",
            {"model_file": "train.py", "model_class": "Tagger"},
            ["__init__ needs vocab_size", """--model-args '{"vocab_size": ...}'"""],
        ),
        (
            "state.pt",
            {**TAGGER, "model_args": {"vocab_size": 6}},
            [
                "does not match the weights: 'rnn.weight_ih_l0' is [36, 6] in the file but "
                "[48, 6] in the model",
                "give the --model-class and --model-args",
            ],
        ),
        (
            "state.pt",
            {"model_file": "train.py", "model_class": "Unused"},
            ["Unused(), built with no arguments,", "unexpected 'embed.weight'"],
        ),
        (
            "state.pt",
            {**TAGGER, "model_args": {"x": 1, **MODEL_ARGS}},
            ["--model-args: Tagger.__init__ takes no 'x'; it takes (vocab_size, hidden)"],
        ),
        ("state.pt", {"model_class": "Tagger"}, ["--model-class Tagger needs --model-file"]),
        ("state.pt", {"model_args": {"hidden": 4}}, ["--model-args needs --model-class"]),
        (
            "full.pt",
            {"model_file": "train.py", "model_class": "Tagger"},
            ["holds a whole nn.Module (Tagger), not a state dict: drop --model-class"],
        ),
    ],
)
def test_dead_ends_say_what_to_do(saved, file, code, fragments):
    code = {k: saved / v if k == "model_file" else v for k, v in code.items()}
    with pytest.raises(EdgeRNNError) as error:
        load_model(saved / file, True, **code)
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize(
    "top_level, fragment",
    [
        ("x = 1\ny = 1 / 0\n", "importing it raised ZeroDivisionError: division by zero at line 2"),
        ("import sys\nsys.exit(3)\n", "importing it exited SystemExit: 3 at line 2"),
    ],
)
def test_a_model_file_failing_at_import_is_one_line(saved, tmp_path, top_level, fragment):
    broken = tmp_path / "broken.py"
    broken.write_text(top_level)
    with pytest.raises(EdgeRNNError) as error:
        load_model(saved / "full.pt", True, model_file=broken)
    message = str(error.value)
    assert fragment in message and "\n" not in message
    assert 'only its `if __name__ == "__main__":` block does not' in message


def test_a_model_file_without_the_pickled_class(saved, tmp_path):
    other = tmp_path / "other.py"
    other.write_text("import torch\n")
    with pytest.raises(EdgeRNNError, match="other.py defines no 'Tagger'.*__main__.Tagger"):
        load_model(saved / "full.pt", True, model_file=other)


def test_other_files(saved, tmp_path):
    torch.save({"epoch": 3, "loss": 0.5}, tmp_path / "scores.pt")
    with pytest.raises(EdgeRNNError, match=r"keys \['epoch', 'loss'\] but no weights"):
        load_model(tmp_path / "scores.pt")
    with pytest.raises(EdgeRNNError, match="no such checkpoint"):
        load_model(tmp_path / "absent.pt")
    # An edgernn checkpoint loads as before, never needing a flag, and takes no model file.
    checkpoint = save_checkpoint(make_checkpoint("classify", "gru"), tmp_path / "c.pt")
    assert isinstance(load_model(checkpoint), Checkpoint)
    with pytest.raises(EdgeRNNError, match="edgernn checkpoint.*drop --model-file"):
        load_model(checkpoint, model_file=saved / "train.py")


@pytest.mark.parametrize(
    "text, fragment",
    [("{hidden: 4}", "not valid JSON"), ("[4]", "must be a JSON object"), ("4", "JSON object")],
)
def test_bad_model_args(text, fragment):
    with pytest.raises(EdgeRNNError, match=fragment):
        parse_model_args(text)
    assert parse_model_args('{"hidden": 4}') == {"hidden": 4}
    assert parse_model_args(None) is None


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_export_cli_of_a_state_dict(saved, tmp_path):
    out = tmp_path / "bundle"
    result = _run(
        "export", saved / "state.pt", "--model-file", saved / "train.py", "--model-class",
        "Tagger", "--model-args", json.dumps(MODEL_ARGS), "--example", saved / "inputs.npz",
        "--exporter", "torchscript", "--no-adopt", "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"] == "custom"
    assert manifest["model"]["class"] == f"{MODULE_NAME}.Tagger"
    fp32 = [entry for entry in manifest["files"] if entry["precision"] == "fp32"]
    assert fp32 and all(entry["parity"]["max_abs_diff"] <= 1e-4 for entry in fp32)
    assert not (saved / "trained.marker").exists()


@pytest.mark.parametrize("command", ["export", "compress"])
def test_cli_dead_ends_are_one_line(saved, tmp_path, command):
    common = ("--example", saved / "inputs.npz", "-o", tmp_path / "b")
    for args, fragment in [
        (("--model-args", "{bad"), "--model-args: not valid JSON"),
        ((), "--model-file models.py --model-class NAME"),
    ]:
        result = _run(command, saved / "state.pt", *args, *common)
        assert result.exit_code == 1, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert fragment in result.output
    assert not (tmp_path / "b").exists()
