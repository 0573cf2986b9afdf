"""Tutorial-style user models through `edgernn compress` with data, then the bundle predicts.

Each is saved the way users save: a ``__main__`` pickle from a training script, a plain state
dict, a ``model_info`` dict with ``word_to_idx`` (unknown id 0) and ``config``. Sizes are tiny;
``benchmarks/own_models.py`` runs the same at realistic sizes.
"""

from __future__ import annotations

import inspect
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from own_models import CharLM, LSTMTagger, RNNRegressor, SentimentLSTM

from edgernn.cli import main
from edgernn.own.load import load_own_module
from edgernn.runtime import Runtime

pytestmark = pytest.mark.slow
MODELS_FILE = Path(__file__).with_name("own_models.py")
STAGES = ("--epochs", "2", "--quiet", "--json")


def _compress(tmp_path: Path, model: Path, *args) -> dict:
    out = tmp_path / "bundle"
    command = ["compress", str(model), *map(str, args), *STAGES, "-o", str(out)]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, result.output
    assert "note: adopted as an edgernn" in result.output
    report = json.loads((out / "report.json").read_text())
    stages = {row.get("stage") for row in report["models"]}
    assert {"distill", "prune"} <= stages  # distilled and pruned, not only int8
    teacher, *_ = report["models"]
    assert (teacher["role"], teacher["file"]) == ("teacher", str(model))  # the user's file
    # one teacher model row (an LM's or seq2seq's whole-job row is its second "teacher" row)
    assert [r["role"] for r in report["models"] if not r.get("job")].count("teacher") == 1
    assert all(row["format"] == "onnx" for row in report["models"] if row["role"] == "final")
    assert (out / "model.int8.onnx").is_file()
    return report


def _splits(folder: Path, suffix: str, write) -> Path:
    folder.mkdir()
    for split, count in (("train", 64), ("valid", 24), ("test", 24)):
        write(folder / f"{split}.{suffix}", count, random.Random(split))
    return folder


def test_a_main_pickled_rnn_regressor(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        "import torch\nfrom torch import nn\n\n\n" + inspect.getsource(RNNRegressor)
        + "\n\nif __name__ == '__main__':\n    torch.manual_seed(0)\n"
        "    torch.save(RNNRegressor(), 'model.pt')\n"
    )  # fmt: skip
    subprocess.run([sys.executable, "train.py"], cwd=tmp_path, check=True)

    def write(path, count, rng):
        x = np.random.default_rng(rng.randrange(99)).standard_normal((count, 10, 1), "float32")
        np.savez(path, x=x, lengths=np.full(count, 10), y=x[:, -3:, 0].sum(1))

    data = _splits(tmp_path / "data", "npz", write)
    test = np.load(data / "test.npz")
    np.savez(tmp_path / "example.npz", x=test["x"][:2])
    report = _compress(
        tmp_path, tmp_path / "model.pt", "--trust-pickle", "--model-file", script,
        "--example", tmp_path / "example.npz", "--data", data,
    )  # fmt: skip
    # The teacher row is the user's model: its test MSE, computed here from the pickle.
    module = load_own_module(tmp_path / "model.pt", trust_pickle=True, model_file=str(script))
    with torch.no_grad():
        predicted = module(torch.from_numpy(test["x"])).numpy()[:, 0]
    mse = float(((predicted - test["y"]) ** 2).mean())
    assert report["models"][0]["metrics"]["mse"] == pytest.approx(mse, rel=1e-4)
    values = Runtime(tmp_path / "bundle").predict(list(test["x"][:3]))
    assert all(np.isfinite(v["values"]).all() for v in values)


WORDS = [f"w{i}" for i in range(2, 40)]  # the user's ids 2..39; <unk> is 0 and <pad> is 1


def _review(rng: random.Random) -> tuple[str, str]:
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, 8))]
    positive = sum(int(w[1:]) % 2 for w in words) * 2 > len(words)
    return " ".join(words), "pos" if positive else "neg"


def test_a_model_info_dict_sentiment_classifier(tmp_path):
    torch.manual_seed(0)
    config = {"vocab_size": 40, "embedding_dim": 6, "hidden_dim": 8, "output_dim": 2}
    word_to_idx = {"<unk>": 0, "<pad>": 1} | {word: i for i, word in enumerate(WORDS, 2)}
    model = SentimentLSTM(**config)
    info = {"state_dict": model.state_dict(), "word_to_idx": word_to_idx, "config": config}
    torch.save(info, tmp_path / "model_info.pt")
    (tmp_path / "labels.json").write_text('["neg", "pos"]')

    def write(path, count, rng):
        rows = ['"{}",{}'.format(*_review(rng)) for _ in range(count)]
        path.write_text("text,label\n" + "\n".join(rows) + "\n")

    data = _splits(tmp_path / "data", "csv", write)
    np.savez(tmp_path / "example.npz", text=np.array([[2, 3, 4, 0, 7], [9, 8, 1, 1, 1]]))
    report = _compress(
        tmp_path, tmp_path / "model_info.pt", "--model-file", MODELS_FILE, "--model-class",
        "SentimentLSTM", "--example", tmp_path / "example.npz", "--labels",
        tmp_path / "labels.json", "--data", data,
    )  # fmt: skip
    # The user's own accuracy on the test split, their ids and their model.
    lines = (data / "test.csv").read_text().splitlines()[1:]
    correct = 0
    for line in lines:
        text, label = line.rsplit(",", 1)
        ids = torch.tensor([[word_to_idx.get(w, 0) for w in text.strip('"').split()]])
        correct += ["neg", "pos"][int(model.eval()(ids).argmax())] == label
    assert report["models"][0]["metrics"]["accuracy"] == pytest.approx(100 * correct / len(lines))
    (answer,) = Runtime(tmp_path / "bundle").predict(["w3 w5 w7 never-seen"])
    assert answer["label"] in ("neg", "pos")


def test_a_state_dict_char_language_model(tmp_path):
    chars = "abcdefgh "
    torch.manual_seed(0)
    torch.save(CharLM(vocab_size=len(chars)).state_dict(), tmp_path / "lm.pt")
    (tmp_path / "chars.json").write_text(json.dumps({c: i for i, c in enumerate(chars)}))

    def write(path, count, rng):
        path.write_text("".join(rng.choice(["abc ", "fed ", "hg "]) for _ in range(count * 4)))

    data = _splits(tmp_path / "data", "txt", write)
    np.savez(tmp_path / "example.npz", x=np.array([[0, 1, 2, 8, 5]]))
    _compress(
        tmp_path, tmp_path / "lm.pt", "--model-file", MODELS_FILE, "--model-class", "CharLM",
        "--model-args", json.dumps({"vocab_size": len(chars)}), "--vocab",
        tmp_path / "chars.json", "--example", tmp_path / "example.npz", "--data", data,
    )  # fmt: skip
    text = Runtime(tmp_path / "bundle").generate("ab", length=8, temperature=0)
    assert len(text) == 8 and set(text) <= set(chars)


def test_a_state_dict_bilstm_tagger(tmp_path):
    words, tags = ["ann", "bob", "paris", "rome", "went", "to", "saw"], ["O", "B-PER", "B-LOC"]
    tag_of = {"ann": "B-PER", "bob": "B-PER", "paris": "B-LOC", "rome": "B-LOC"}
    torch.manual_seed(0)
    torch.save(LSTMTagger(vocab_size=len(words), tagset_size=3).state_dict(), tmp_path / "t.pt")
    (tmp_path / "vocab.json").write_text(json.dumps({w: i for i, w in enumerate(words)}))
    (tmp_path / "tags.json").write_text(json.dumps({t: i for i, t in enumerate(tags)}))

    def write(path, count, rng):
        sentences = [[rng.choice(words) for _ in range(rng.randint(2, 6))] for _ in range(count)]
        blocks = ["\n".join(f"{w} {tag_of.get(w, 'O')}" for w in s) for s in sentences]
        path.write_text("\n\n".join(blocks) + "\n")

    data = _splits(tmp_path / "data", "conll", write)
    np.savez(tmp_path / "example.npz", sentence=np.array([0, 4, 5, 2]))
    args = ("--model-args", json.dumps({"vocab_size": len(words), "tagset_size": 3}))
    _compress(
        tmp_path, tmp_path / "t.pt", "--model-file", MODELS_FILE, "--model-class", "LSTMTagger",
        *args, "--vocab", tmp_path / "vocab.json", "--labels", tmp_path / "tags.json",
        "--example", tmp_path / "example.npz", "--data", data,
    )  # fmt: skip
    (answer,) = Runtime(tmp_path / "bundle").predict(["ann went to rome"])
    assert len(answer["tags"]) == 4 and set(answer["tags"]) <= set(tags)
