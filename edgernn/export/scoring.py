"""Score a bundle's graphs on a test split with the same metric code as PyTorch models.

The ONNX graphs run through ``edgernn.runtime`` (what a device app uses) behind a small
adapter that looks like a zoo model to ``edgernn.tasks``, so the fp32, int8 and PyTorch
numbers come from one implementation of each metric.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx
import torch

from edgernn.checkpoint import Checkpoint, checkpoint_data
from edgernn.data import encode, iterate_batches, load_raw
from edgernn.data.meta import DataMeta
from edgernn.evaluate import EVAL_BATCH, evaluate
from edgernn.export.int8 import integer_nodes, quantize_node
from edgernn.metrics import metric_drop
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
    encoded, note = checkpoint_data(checkpoint, data)
    if encoded is None:
        return {"note": f"not scored: {note}"}
    examples = encoded.splits[SPLIT]
    results = {"pytorch_fp32": evaluate(checkpoint.build(), examples, checkpoint.meta)}
    precisions = sorted({entry["precision"] for entry in manifest["files"]})
    for precision in precisions:
        runtime = Runtime(directory, precision, manifest=manifest)
        results[f"onnx_{precision}"] = runtime_metrics(checkpoint, runtime, examples)
    name, higher = primary_metric(checkpoint.spec.task)
    return {
        "split": SPLIT,
        "data": data or checkpoint.meta.source,
        "examples": len(examples),
        "metric": name,
        "higher_is_better": higher,
        "results": results,
    }


def runtime_metrics(checkpoint: Checkpoint, runtime: Runtime, examples: list) -> dict[str, float]:
    """The task's metrics of a loaded bundle on encoded examples (the PyTorch metric code)."""
    return _runtime_metrics(checkpoint.spec.task, checkpoint.meta, runtime, examples)


def bundle_metrics(directory: str | Path, precision: str, data: str) -> dict[str, float]:
    """Test-split metrics of one precision of a bundle, from its manifest alone.

    What ``edgernn bench BUNDLE --data DATA`` reports for the bundle's graphs: no checkpoint
    is needed, the manifest holds the vocabulary, labels, normalization and length limit.

    Example::

        scores = bundle_metrics("runs/bundle", "int8", "builtin:sentiment")
    """
    runtime = Runtime(directory, precision)
    scored = runtime.manifest.get("metrics") or {}
    if scored.get("data") == data and scored.get("split") == SPLIT:  # the export measured it
        return scored["results"][f"onnx_{precision}"]
    meta = meta_from_manifest(runtime.manifest)
    raw = load_raw(data, meta.task)
    examples = encode(raw, meta, runtime.manifest["input"]["max_len"]).splits[SPLIT]
    return _runtime_metrics(meta.task, meta, runtime, examples)


def meta_from_manifest(manifest: dict) -> DataMeta:
    """The ``DataMeta`` a bundle was exported with, rebuilt from its manifest."""
    tokenization = manifest["input"].get("tokenization")
    return DataMeta(
        task=manifest["task"],
        tokens=None if tokenization == "pretokenized" else tokenization,
        vocab=manifest.get("vocab"),
        tgt_vocab=manifest.get("target_vocab"),
        labels=manifest.get("labels"),
        norm=manifest.get("normalization"),
        input_size=manifest["input"].get("features") or 0,
        text=manifest["input"].get("text"),  # absent in version 1: the legacy rules
    )


def _runtime_metrics(task: str, meta: DataMeta, runtime: Runtime, examples: list) -> dict:
    batches = iterate_batches(examples, task, EVAL_BATCH)
    return TASKS[task].evaluate(OnnxModel(runtime), batches, meta)


def int8_sensitivity(
    graphs: dict[str, onnx.ModelProto],
    score: Callable[[dict[str, onnx.ModelProto]], float],
    metric: str,
    per_channel: bool = False,
) -> dict[str, dict[str, float]]:
    """What each integer-kernel node costs alone: the rest of the graphs stays fp32.

    As ``edgernn.quantize`` measures PyTorch layers: one node at a time, so the number is
    that node's own loss, not an interaction.

    Args:
        graphs: role -> fp32 graph, every graph ``score`` needs (``model``, or ``encoder``
            and ``decoder``).
        score: the primary metric of a set of graphs on the measuring split
            (``export_bundle``'s: the worse of padded batches and each example alone, since
            an integer kernel's input scale depends on what else is in the call).
        metric: its name (decides points vs % relative, see ``metric_drop``).
        per_channel: the scale granularity the int8 export uses.

    Returns:
        role -> node name -> metric loss (points, or % relative for perplexity/MSE).

    Example::

        drops = int8_sensitivity({"model": fp32}, score, "mse")   # {"model": {"node_x": 7.4}}
    """
    reference = score(graphs)
    drops: dict[str, dict[str, float]] = {}
    for role, proto in graphs.items():
        for node in integer_nodes(proto):
            alone = graphs | {role: quantize_node(proto, node, per_channel)}
            drops.setdefault(role, {})[node] = metric_drop(reference, score(alone), metric)
    return drops
