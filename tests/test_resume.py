"""Resumable training: a killed run continued with --resume ends where an unbroken one does."""

import pytest
import torch
from click.testing import CliRunner

import edgernn.train
from edgernn.cli import main
from edgernn.config import TrainConfig
from edgernn.errors import EdgeRNNError
from edgernn.resume import state_path
from edgernn.train import train

# Two layers and dropout: the dropout masks must continue from the same random stream.
MODEL = {"hidden": 8, "embed": 8, "layers": 2, "dropout": 0.3}
CONFIG = TrainConfig(epochs=4, batch_size=16, patience=10, progress=False)


def _killed_after(epochs: int, monkeypatch) -> None:
    """Make the validation pass of epoch ``epochs + 1`` raise, as a kill would stop it."""
    original, calls = edgernn.train.evaluate, []

    def evaluate(*args, **kwargs):
        calls.append(1)
        if len(calls) > epochs:
            raise KeyboardInterrupt("killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(edgernn.train, "evaluate", evaluate)


def test_a_resumed_run_ends_with_the_weights_of_an_unbroken_one(
    classify_csv, tmp_path, monkeypatch
):
    # Every epoch counts as the best so far: the weights returned are the last epoch's,
    # which the resumed epochs (their batches and dropout masks) must reproduce exactly.
    monkeypatch.setattr(edgernn.train, "is_better", lambda *args: True)
    unbroken = train(str(classify_csv), "classify", CONFIG, **MODEL)
    state = state_path(tmp_path / "teacher.pt")
    with monkeypatch.context() as patch:
        _killed_after(2, patch)
        with pytest.raises(KeyboardInterrupt):
            train(str(classify_csv), "classify", CONFIG, resume=state, **MODEL)
    assert state.exists()
    resumed = train(str(classify_csv), "classify", CONFIG, resume=state, **MODEL)
    assert not state.exists()  # removed once training ended
    for name, tensor in unbroken.state_dict.items():
        assert torch.equal(tensor, resumed.state_dict[name]), name
    assert resumed.metrics == unbroken.metrics


def test_resuming_with_other_settings_is_refused(classify_csv, tmp_path, monkeypatch):
    state = state_path(tmp_path / "teacher.pt")
    with monkeypatch.context() as patch:
        _killed_after(1, patch)
        with pytest.raises(KeyboardInterrupt):
            train(str(classify_csv), "classify", CONFIG, resume=state, **MODEL)
    other = TrainConfig(epochs=4, batch_size=16, patience=10, lr=1e-3, progress=False)
    with pytest.raises(EdgeRNNError, match="other settings"):
        train(str(classify_csv), "classify", other, resume=state, **MODEL)
    state.write_bytes(b"not a state")
    with pytest.raises(EdgeRNNError, match="not a readable training state"):
        train(str(classify_csv), "classify", CONFIG, resume=state, **MODEL)


def test_the_command_keeps_the_state_only_while_it_trains(classify_csv, tmp_path):
    out = tmp_path / "teacher.pt"
    args = ["train", "--task", "classify", "--data", str(classify_csv), "--hidden", "8"]
    args += ["--epochs", "1", "--quiet", "-o", str(out)]
    result = CliRunner().invoke(main, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    assert "nothing to resume" in result.output
    assert out.exists() and not state_path(out).exists()
    state_path(out).write_bytes(b"left by an earlier run")
    result = CliRunner().invoke(main, args)  # without --resume: starts over
    assert result.exit_code == 0, result.output
    assert "starting over" in result.output and not state_path(out).exists()
