"""Score a bundle's graphs on a test split with the same metric code as PyTorch models.

The ONNX graphs run through ``edgernn.runtime`` (what a device app uses) behind a small
adapter that looks like a zoo model to ``edgernn.tasks``, so the fp32, int8 and PyTorch
numbers come from one implementation of each metric.
"""

from __future__ import annotations

from pathlib import Path

import torch

from edgernn.checkpoint import Checkpoint
from edgernn.data import encode, iterate_batches, load_raw
from edgernn.errors import EdgeRNNError
from edgernn.evaluate import EVAL_BATCH, evaluate
from edgernn.runtime import Runtime
from edgernn.tasks import TASKS, primary_metric

SPLIT = "test"


class OnnxModel:
    """Calls a bundle graph the way ``edgernn.tasks`` calls a model.

    Example::

        scores = TASKS["classify"].evaluate(OnnxModel(Runtime(bundle)), batches, meta)
    """

    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def __call__(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        feeds = {"inputs": inputs.numpy(), "lengths": lengths.numpy()}
        (result,) = self.runtime.run("model", feeds).values()
        return torch.from_numpy(result)

    def greedy(self, src: torch.Tensor, lengths: torch.Tensor, max_len: int) -> list[list[int]]:
        return self.runtime.decode_ids(src.numpy(), lengths.numpy(), 1, max_len)


def score_bundle(
    checkpoint: Checkpoint, directory: Path, manifest: dict, data: str | None = None
) -> dict:
    """Test-split metrics of the PyTorch model and of every precision in the bundle.

    Args:
        checkpoint: the exported checkpoint.
        directory: the bundle directory (files written, manifest maybe not yet).
        manifest: the bundle's manifest.
        data: DATA to score on; default the data the checkpoint records.

    Returns:
        ``{"split", "data", "metric", "higher_is_better", "results": {"pytorch_fp32": {...},
        "onnx_fp32": {...}, "onnx_int8": {...}}}``, or a note when there is no data.
    """
    source = data or checkpoint.meta.source
    task = checkpoint.spec.task
    try:
        raw = load_raw(source, task) if source else None
    except EdgeRNNError as error:
        if data:  # the user named it, so it must work
            raise
        return {"note": f"not scored: recorded data unavailable ({error}); pass --data"}
    if raw is None:
        return {"note": "not scored: the checkpoint records no data; pass --data"}
    examples = encode(raw, checkpoint.meta, checkpoint.spec.max_len).splits[SPLIT]
    results = {"pytorch_fp32": evaluate(checkpoint.build(), examples, checkpoint.meta)}
    precisions = sorted({entry["precision"] for entry in manifest["files"]})
    for precision in precisions:
        runtime = Runtime(directory, precision, manifest=manifest)
        batches = iterate_batches(examples, task, EVAL_BATCH)
        results[f"onnx_{precision}"] = TASKS[task].evaluate(
            OnnxModel(runtime), batches, checkpoint.meta
        )
    name, higher = primary_metric(task)
    return {
        "split": SPLIT,
        "data": source,
        "examples": len(examples),
        "metric": name,
        "higher_is_better": higher,
        "results": results,
    }
