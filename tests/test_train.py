import math

import pytest
import torch

from edgernn.checkpoint import load_checkpoint, save_checkpoint
from edgernn.config import TrainConfig
from edgernn.data import collate, encode, load_raw
from edgernn.errors import EdgeRNNError
from edgernn.evaluate import evaluate_checkpoint
from edgernn.metrics import METRICS_BY_TASK
from edgernn.train import train

TINY = {"hidden": 8, "embed": 8, "dropout": 0.0}
QUICK = TrainConfig(epochs=2, batch_size=16, progress=False)

MATRIX = [
    (task, cell, bidirectional)
    for task in ("classify", "tag", "lm", "regress")
    for cell in ("rnn", "lstm", "gru")
    for bidirectional in (False, True)
    if not (task == "lm" and bidirectional)
] + [
    ("seq2seq", cell, attention) for cell in ("lstm", "gru") for attention in ("bahdanau", "luong")
]


def _choices(task: str, cell: str, variant) -> dict:
    if task == "seq2seq":
        return TINY | {"cell": cell, "attention": variant}
    return TINY | {"cell": cell, "bidirectional": variant}


@pytest.mark.parametrize("task, cell, variant", MATRIX)
def test_train_every_task_cell_and_direction(task, cell, variant, data_files, tmp_path):
    checkpoint = train(str(data_files[task]), task, QUICK, **_choices(task, cell, variant))
    for split in ("valid", "test"):
        scores = checkpoint.metrics[split]
        expected = set(METRICS_BY_TASK[task]) - ({"bits_per_char"} if task != "lm" else set())
        assert set(scores) == expected
        assert all(math.isfinite(value) for value in scores.values())
    path = save_checkpoint(checkpoint, tmp_path / "m.pt")
    assert evaluate_checkpoint(load_checkpoint(path)) == pytest.approx(checkpoint.metrics["test"])


def test_training_is_reproducible_and_seeded(classify_csv):
    runs = [
        train(str(classify_csv), "classify", TrainConfig(epochs=2, progress=False, seed=s), **TINY)
        for s in (0, 0, 1)
    ]
    first, again, other = (run.state_dict for run in runs)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert any(not torch.equal(first[name], other[name]) for name in first)


def test_training_learns_a_simple_rule(classify_csv):
    config = TrainConfig(epochs=30, batch_size=8, patience=30, progress=False)
    checkpoint = train(str(classify_csv), "classify", config, hidden=16, embed=8, dropout=0.0)
    assert checkpoint.metrics["valid"]["accuracy"] >= 80.0


@pytest.mark.parametrize("fixture", ["regress_npz", "classify_npz"])
def test_padded_batch_equals_one_by_one(fixture, request):
    path = request.getfixturevalue(fixture)
    task = "regress" if fixture == "regress_npz" else "classify"
    checkpoint = train(str(path), task, QUICK, bidirectional=True, **TINY)
    model = checkpoint.build()
    examples = encode(load_raw(str(path), task), checkpoint.meta, 64).splits["test"]
    batch = collate(examples, task)
    together = model(batch.inputs, batch.lengths)
    alone = torch.cat([model(x[None], torch.tensor([len(x)])) for x, _ in examples])
    assert (batch.lengths.min() < batch.lengths.max()) and torch.allclose(
        together, alone, atol=1e-5
    )


def test_user_errors_before_training(classify_csv):
    with pytest.raises(EdgeRNNError, match="cannot be bidirectional"):
        train("builtin:charlm", "lm", QUICK, bidirectional=True)
    with pytest.raises(EdgeRNNError, match="max length 2"):
        train(str(classify_csv), "classify", QUICK, max_len=2, **TINY)
    with pytest.raises(EdgeRNNError, match="unknown task"):
        train(str(classify_csv), "translate", QUICK)


@pytest.mark.parametrize("epochs", [1, 10])  # 10 steps: a warm-up of exactly one step
def test_any_number_of_steps_trains(classify_csv, epochs):
    config = TrainConfig(epochs=epochs, batch_size=1000, progress=False)  # one batch an epoch
    assert train(str(classify_csv), "classify", config, **TINY).metrics["valid"]
