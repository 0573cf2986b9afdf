"""A user's model edgernn cannot adopt, distilled from as a black-box teacher.

The user's models here are written the way people write them (a Conv1d front end, a CRF-like
transition matrix): edgernn cannot rebuild them, so it calls their ``forward`` on the data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from edgernn.cli import main
from edgernn.config import TrainConfig
from edgernn.data import encode, load_raw
from edgernn.distill import distill
from edgernn.distill.config import DistillConfig, StudentConfig
from edgernn.errors import EdgeRNNError
from edgernn.own.blackbox import black_box_checkpoint
from edgernn.own.load import OwnModel

WORDS = ["good", "bad", "film", "plot", "not", "very", "the", "was"]  # conftest's
VOCAB = {"<pad>": 0, "<unk>": 1} | {word: i for i, word in enumerate(WORDS, 2)}


class ConvGRUClassifier(nn.Module):
    """Embedding -> Conv1d -> GRU -> Linear: the conv front end is not adoptable."""

    calls: list[int] = []  # rows forward was given, shared by copies

    def __init__(self, vocab_size=10, hidden=12, classes=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 8, padding_idx=0)
        self.conv = nn.Conv1d(8, 8, kernel_size=3, padding=1)
        self.gru = nn.GRU(8, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, text):
        ConvGRUClassifier.calls.append(len(text))
        x = torch.relu(self.conv(self.embedding(text).transpose(1, 2))).transpose(1, 2)
        _, h = self.gru(x)
        return self.fc(h[-1])


class CRFTagger(nn.Module):
    """A BiLSTM emission model with a CRF-like transition matrix; forward gives emissions."""

    def __init__(self, vocab_size=14, tags=3, hidden=8):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 6)
        self.lstm = nn.LSTM(6, hidden, bidirectional=True, batch_first=True)
        self.emissions = nn.Linear(2 * hidden, tags)
        self.transitions = nn.Parameter(torch.randn(tags, tags))

    def forward(self, tokens):
        out, _ = self.lstm(self.embedding(tokens))
        return torch.tanh(self.emissions(out)) * 3


class ViterbiTagger(CRFTagger):
    """A BiLSTM-CRF whose forward decodes: Viterbi over emissions and transitions, tag ids."""

    def forward(self, tokens):
        emissions = super().forward(tokens)
        score, back = emissions[:, 0], []
        for step in range(1, emissions.size(1)):
            total = score.unsqueeze(2) + self.transitions + emissions[:, step].unsqueeze(1)
            score, best = total.max(dim=1)
            back.append(best)
        path = [score.argmax(-1)]
        for best in reversed(back):
            path.append(best.gather(1, path[-1].unsqueeze(1)).squeeze(1))
        return torch.stack(path[::-1], dim=1)


class TutorialCRF(ViterbiTagger):
    """PyTorch's BiLSTM-CRF tutorial's interface: one unbatched sentence (T,) in,
    ``(path_score, best_path)`` out, the path a Python list of ints."""

    def forward(self, sentence):
        path = super().forward(sentence[None])[0]
        return torch.tensor(0.5), path.tolist()


class TimeMajorRegressor(nn.Module):
    """Time-major float features with a lengths input, one value per sequence."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(2, 6)
        self.fc = nn.Linear(6, 1)

    def forward(self, x, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        _, h = self.gru(packed)
        return self.fc(h[-1]).squeeze(-1)


def _own(module: nn.Module, tmp_path: Path, **inputs) -> OwnModel:
    np.savez(tmp_path / "example.npz", **inputs)
    return OwnModel.prepare(module.eval(), tmp_path / "example.npz", "mine.pt")


def _classifier(tmp_path: Path):
    torch.manual_seed(0)
    own = _own(ConvGRUClassifier(), tmp_path, text=np.array([[2, 3, 4], [5, 6, 7]]))
    return black_box_checkpoint(own, "classify", VOCAB, ["neg", "pos"])


def test_outputs_for_a_padded_batch_are_the_users_model_on_each_row_alone(tmp_path):
    checkpoint = _classifier(tmp_path)
    teacher, user = checkpoint.build(), checkpoint.teacher.module
    # edgernn ids: <pad> <unk> <bos> <eos> are 0-3, then the user's tokens in their order.
    inputs = torch.tensor([[4, 5, 6, 7, 8], [9, 4, 0, 0, 0], [5, 6, 7, 0, 0]])
    lengths = torch.tensor([5, 2, 3])
    got = teacher(inputs, lengths)
    to_user = {4 + i: user_id for i, user_id in enumerate(range(2, len(VOCAB)))}
    with torch.no_grad():
        for row, length, out in zip(inputs, lengths, got, strict=True):
            ids = torch.tensor([[to_user[int(t)] for t in row[:length]]])
            assert torch.allclose(user(ids)[0], out, atol=1e-6)


def test_a_time_major_model_with_lengths_gets_each_row_at_its_length(tmp_path):
    torch.manual_seed(0)
    x = np.zeros((4, 2, 2), np.float32)
    own = _own(TimeMajorRegressor(), tmp_path, x=x, lengths=np.array([4, 2]))
    teacher = black_box_checkpoint(own, "regress", None, None).build()
    inputs, lengths = torch.randn(3, 6, 2), torch.tensor([6, 1, 4])
    got = teacher(inputs, lengths)
    assert got.shape == (3, 1)
    with torch.no_grad():
        for row, length, out in zip(inputs, lengths, got, strict=True):
            alone = own.module(row[:length, None], torch.tensor([int(length)]))
            assert torch.allclose(alone, out, atol=1e-6)


def test_the_users_forward_runs_once_per_training_example(tmp_path, classify_csv):
    checkpoint = _classifier(tmp_path)
    data = encode(load_raw(str(classify_csv), "classify"), checkpoint.meta, 64)
    ConvGRUClassifier.calls.clear()
    config = DistillConfig(hidden_match=0, train=TrainConfig(epochs=2, batch_size=8))
    distill(checkpoint.build(), data, StudentConfig(hidden=4), config)
    distinct = {example[0].numpy().tobytes() for example in data.splits["train"]}
    assert sum(ConvGRUClassifier.calls) == len(distinct)


@pytest.mark.parametrize(
    ("model_class", "example", "decode"),
    [
        (ViterbiTagger, {"tokens": np.array([[1, 2, 3]])}, lambda m, row: m(row[None])[0].tolist()),
        # The tutorial's forward returns (path score, path): the path is the decision.
        (TutorialCRF, {"sentence": np.array([1, 2, 3])}, lambda m, row: m(row)[1]),
    ],
    ids=["viterbi", "tutorial-crf"],
)
def test_a_decoding_forward_teaches_the_path_it_decodes(tmp_path, model_class, example, decode):
    torch.manual_seed(0)
    own = _own(model_class(), tmp_path, **example)
    vocab = {"<unk>": 0} | {f"w{i}": i for i in range(1, 14)}
    teacher = black_box_checkpoint(own, "tag", vocab, ["O", "B-PER", "B-LOC"]).build()
    inputs, lengths = torch.randint(4, 17, (3, 5)), torch.tensor([5, 2, 4])
    scores = teacher(inputs, lengths)
    with torch.no_grad():
        for row, length, out in zip(inputs, lengths, scores, strict=True):
            path = decode(own.module, row[:length] - 3)  # edgernn id - 3 = the user's
            assert out[:length].argmax(-1).tolist() == path
            assert out[:length].softmax(-1).max(-1).values.min() > 0.999


def test_outputs_of_the_wrong_shape_are_one_line(tmp_path):
    own = _own(ConvGRUClassifier(), tmp_path, text=np.array([[2, 3, 4]]))
    with pytest.raises(EdgeRNNError, match="one score per tag|must give"):
        black_box_checkpoint(own, "tag", VOCAB, None)
    with pytest.raises(EdgeRNNError, match="needs --task"):
        black_box_checkpoint(own, None, VOCAB, None)


def _compress(tmp_path, model_class, data, task, vocab, labels, example):
    torch.save(model_class().state_dict(), tmp_path / "mine.pt")
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    np.savez(tmp_path / "example.npz", **example)
    out = tmp_path / "bundle"
    command = [
        "compress", str(tmp_path / "mine.pt"), "--model-file", __file__, "--model-class",
        model_class.__name__, "--example", str(tmp_path / "example.npz"), "--vocab",
        str(tmp_path / "vocab.json"), "--labels", str(tmp_path / "labels.json"), "--data",
        str(data), "--task", task, "--student-hidden", "8", "--epochs", "2", "--quiet",
        "--json", "-o", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, result.output
    assert "used as a black-box teacher" in result.output
    for name in ("student.pt", "model.onnx", "manifest.json"):
        assert (out / name).is_file()
    report = json.loads((out / "report.json").read_text())
    teacher = report["models"][0]
    assert teacher["role"] == "teacher" and teacher["file"] == str(tmp_path / "mine.pt")
    assert teacher["params"] == sum(p.numel() for p in model_class().parameters())
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["teacher_metrics"] == teacher["metrics"]
    # Timed through the user's forward on the grid, like the final graphs beside it.
    final = next(row for row in report["models"] if row["role"] == "final")
    grid = {(e["batch"], e["seq_len"], e["threads"]) for e in final["latency"]}
    assert {(e["batch"], e["seq_len"], e["threads"]) for e in teacher["latency"]} >= grid
    assert all(entry["p50_ms"] > 0 for entry in teacher["latency"])
    assert report["ratios"]["p50_ms"] is not None  # a speed-up over the user's model
    return teacher


@pytest.mark.slow
def test_compress_distills_from_a_conv_gru_classifier(tmp_path, classify_csv):
    example = {"text": np.array([[2, 3, 4], [5, 6, 7]])}
    teacher = _compress(
        tmp_path, ConvGRUClassifier, classify_csv, "classify", VOCAB, ["neg", "pos"], example
    )
    assert 0 <= teacher["metrics"]["accuracy"] <= 100


@pytest.mark.slow
def test_compress_distills_from_a_crf_like_tagger(tmp_path, tag_conll):
    words = ["Ann", "Bob", "Oslo", "Rome", *WORDS]
    vocab = {"<unk>": 0} | {word: i for i, word in enumerate(words, 1)}
    example = {"tokens": np.array([[1, 2, 3]])}
    teacher = _compress(
        tmp_path, CRFTagger, tag_conll, "tag", vocab, ["O", "B-PER", "B-LOC"], example
    )
    assert 0 <= teacher["metrics"]["token_accuracy"] <= 100
