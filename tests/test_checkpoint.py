import pickle
from dataclasses import replace

import pytest
import torch

from edgernn.checkpoint import (
    VERSION,
    Checkpoint,
    checkpoint_data,
    load_checkpoint,
    save_checkpoint,
)
from edgernn.config import ModelSpec
from edgernn.data.meta import DataMeta
from edgernn.errors import EdgeRNNError
from edgernn.models import build_model


def _checkpoint() -> Checkpoint:
    spec = ModelSpec(task="classify", hidden=8, embed=4, vocab_size=10, num_outputs=2)
    meta = DataMeta(
        "classify", "word", vocab=["<pad>", "<unk>", "<bos>", "<eos>"], labels=["a", "b"]
    )
    state = build_model(spec).state_dict()
    return Checkpoint(spec, meta, state, {"test": {"accuracy": 50.0}}, {"seed": 0})


def test_round_trip_with_weights_only(tmp_path):
    original = _checkpoint()
    path = save_checkpoint(original, tmp_path / "sub" / "m.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "edgernn.checkpoint" and raw["version"] == VERSION
    loaded = load_checkpoint(path)
    assert loaded.spec == original.spec and loaded.meta == original.meta
    assert loaded.metrics == original.metrics
    model = loaded.build()
    x, lengths = torch.tensor([[4, 5, 6]]), torch.tensor([3])
    reference = build_model(original.spec)
    reference.load_state_dict(original.state_dict)
    assert torch.equal(model(x, lengths), reference.eval()(x, lengths))
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["m.pt"]  # no temp left


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(EdgeRNNError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")
    path = tmp_path / "corrupt.pt"
    save_checkpoint(_checkpoint(), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(EdgeRNNError, match="corrupt"):
        load_checkpoint(path)
    path.write_text("hello")
    with pytest.raises(EdgeRNNError, match="corrupt"):
        load_checkpoint(path)


def test_newer_version_and_foreign_payloads_are_refused(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(_checkpoint(), path)
    payload = torch.load(path, weights_only=True)
    torch.save(payload | {"version": VERSION + 1}, path)
    with pytest.raises(EdgeRNNError, match="newer than this edgernn reads"):
        load_checkpoint(path)
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(EdgeRNNError, match="not an edgernn checkpoint"):
        load_checkpoint(path)


class _Planted:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickled_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save(
        {"format": "edgernn.checkpoint", "x": _Planted(str(marker))}, path, pickle_module=pickle
    )
    with pytest.raises(EdgeRNNError, match="--trust-pickle"):
        load_checkpoint(path)
    assert not marker.exists()


def test_the_data_of_a_checkpoint_follows_one_policy(classify_csv, tmp_path):
    from edgernn.config import TrainConfig
    from edgernn.evaluate import evaluate_checkpoint
    from edgernn.train import train

    trained = train(str(classify_csv), "classify", TrainConfig(epochs=1, progress=False), hidden=4)
    encoded, note = checkpoint_data(trained)  # the recorded data
    assert note == f"data: {classify_csv}" and len(encoded.splits["test"]) > 0
    # Recorded data that is gone, or none recorded: no data, and a note that says why.
    moved = replace(trained, meta=replace(trained.meta, source=str(tmp_path / "gone.csv")))
    assert checkpoint_data(moved)[0] is None and "pass --data" in checkpoint_data(moved)[1]
    anonymous = replace(trained, meta=replace(trained.meta, source=""))
    assert checkpoint_data(anonymous) == (None, "the checkpoint records no data; pass --data")
    with pytest.raises(EdgeRNNError, match="records no data"):  # evaluate cannot go on
        evaluate_checkpoint(anonymous)
    # Data the user names must load and be of the model's task.
    assert checkpoint_data(anonymous, str(classify_csv))[0] is not None
    with pytest.raises(EdgeRNNError, match="no such file"):
        checkpoint_data(trained, str(tmp_path / "gone.csv"))
    with pytest.raises(EdgeRNNError, match="is a lm dataset but the model is a classify model"):
        checkpoint_data(trained, "builtin:charlm")
