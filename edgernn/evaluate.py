"""Score a model, or a saved checkpoint, on one split of its task's data."""

from __future__ import annotations

from torch import nn

from edgernn.checkpoint import Checkpoint, checkpoint_data
from edgernn.data import iterate_batches
from edgernn.data.meta import DataMeta
from edgernn.errors import EdgeRNNError
from edgernn.tasks import TASKS

EVAL_BATCH = 256


def evaluate(
    model: nn.Module, examples: list, meta: DataMeta, device: str = "cpu"
) -> dict[str, float]:
    """Task metrics of ``model`` on encoded ``examples`` (one split of a ``TaskData``)."""
    was_training = model.training
    model.eval()
    batches = (b.to(device) for b in iterate_batches(examples, meta.task, EVAL_BATCH))
    scores = TASKS[meta.task].evaluate(model, batches, meta)
    model.train(was_training)
    return scores


def evaluate_checkpoint(
    checkpoint: Checkpoint, data: str | None = None, split: str = "test"
) -> dict[str, float]:
    """Metrics of a checkpoint on ``split`` of ``data`` (default: the data it was trained on).

    The data is encoded with the checkpoint's own vocabulary, labels and normalization
    (``edgernn.checkpoint.checkpoint_data``).

    Raises:
        EdgeRNNError: no ``data`` and none recorded (or it no longer loads), or bad ``data``.

    Example::

        scores = evaluate_checkpoint(load_checkpoint("teacher.pt"), split="valid")
    """
    encoded, note = checkpoint_data(checkpoint, data)
    if encoded is None:
        raise EdgeRNNError(note)
    return evaluate(checkpoint.build(), encoded.splits[split], checkpoint.meta)
