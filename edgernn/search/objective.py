"""What a search minimises: the artifact's bytes, its multiply-accumulates, or its latency.

``size`` is estimated from parameter counts and precision (``trial.estimated_size``). ``macs``
counts one multiply-accumulate per weight each time it is applied to one valid input of the
valid split's median length: recurrent and embedding-projection weights once per step, the
head once per step for tag and lm and once per sequence otherwise (a seq2seq counts each
weight once per source step: attention over the source is left out). Embedding lookups cost
none. ``latency`` exports the trial's bundle (its int8 choice made on the valid split, as
compress makes it) and times the graph it ships at batch 1, one thread, on an input of that
median length, with ``edgernn bench``'s harness in a fresh process: on a shared machine it
is noisier than the other two, so the chosen point is re-measured in the bundle's report.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import replace

from edgernn.errors import EdgeRNNError

OBJECTIVES = ("size", "macs", "latency")
UNITS = {
    "size": "bytes, estimated from parameter counts and precision",
    "macs": "multiply-accumulates for one valid input of median length",
    "latency": "ms, p50 of the shipped ONNX graph at batch 1, 1 thread, median valid length",
}
# What a Gather reads: plain, low-rank and hashed tables (edgernn.models.embedding).
TABLES = ("embedding.weight", "embedding.table.weight", "embedding.first.weight")
TABLES += ("embedding.second.weight",)
PER_STEP_HEAD = ("tag", "lm")
LEAST = {"size": "the smallest", "macs": "the fewest MACs", "latency": "the fastest"}


def median_length(examples) -> int:
    """The median input length of a split (what ``macs`` and ``latency`` are measured at)."""
    return max(1, round(statistics.median(len(x) for x, _ in examples)))


def macs(state: dict, task: str, steps: int) -> int:
    """Multiply-accumulates of one input of ``steps`` steps (the rule in the module doc)."""
    total = 0
    for name, tensor in state.items():
        if tensor.dim() < 2 or name.endswith(TABLES):
            continue
        once = name.startswith("head.") and task not in PER_STEP_HEAD
        total += tensor.numel() * (1 if once else steps)
    return total


def latency_ms(checkpoint, data: str | None, int8: bool, embed_bits: int, steps: int) -> float:
    """p50 ms of the graph the trial's bundle ships, at batch 1 and ``steps`` steps."""
    from edgernn.bench import BenchConfig, TimingConfig, bench, candidates_from_paths
    from edgernn.export import ExportConfig, export_bundle

    if checkpoint.spec.task == "seq2seq":
        raise EdgeRNNError(
            "--objective latency: a seq2seq's latency is a decoding job, not one graph call; "
            "search it by --objective size or macs"
        )
    precision = "int8" if int8 else "fp32"
    export = ExportConfig(int8=int8, evaluate=False, embed_bits=embed_bits)
    timing = TimingConfig(min_iters=20, min_time_s=0.3, max_time_s=2.0)
    config = BenchConfig(batch_sizes=(1,), seq_lens=(steps,), threads=(1,), timing=timing)
    with tempfile.TemporaryDirectory(prefix="edgernn-trial-") as folder:
        export_bundle(checkpoint, folder, data, export)
        (candidate,) = [
            c
            for c in candidates_from_paths([folder], end_to_end=False)
            if c.graph == "model" and c.precision == precision
        ]
        report = bench([replace(candidate, role="final")], replace(config, progress=False))
    (row,) = report["models"]
    return float(row["latency"][0]["p50_ms"])


def shown(objective: str, value: float) -> str:
    """A trial's objective value as one short reading: ``~1.2 KiB``, ``35k MACs``, ``0.2 ms``."""
    if objective == "size":
        return f"~{value / 1024:.2g} KiB"
    if objective == "macs":
        return f"{value / 1000:.3g}k MACs"
    return f"{value:.3g} ms"
