"""``compress_own``: what ``edgernn compress`` does with a user's own module.

A module edgernn did not build has no task, data or metric, so only the data-free stage
applies: dynamic int8, as ONNX Runtime's int8 graph of the export (``edgernn.export.int8``).
Distillation and pruning need data to train and to check accuracy, so they are refused
before any work. The bundle is the ``custom`` export plus a report: the module's own row
(parameters, size) and the ONNX graphs timed by the bench harness on the example's inputs.
Accuracy is not measured, and the report says so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgernn.bench import BenchConfig, TimingConfig, bench, candidates_from_paths
from edgernn.bundle.manifest import read_manifest
from edgernn.compress.finish import BundleReportConfig
from edgernn.compress.precision import NO_QUANTIZE
from edgernn.export.own import TASK, export_own
from edgernn.export.writer import ExportConfig
from edgernn.models.size import parameter_counts, serialized_size
from edgernn.own.load import OwnModel
from edgernn.report.schema import write_report

NOT_MEASURED = (
    "accuracy not measured: your own model, kept as it is (not adopted), has no task metric, "
    "so compress ran the data-free stage only (dynamic int8, no distillation or pruning)"
)
NOT_TIMED = (
    "PyTorch latency of your own model kept as it is is not measured (the bench workers load "
    "edgernn checkpoints only); its ONNX graphs are timed"
)
_UNMEASURED = ("peak_rss_mb", "peak_rss_raw_mb", "peak_rss_baseline_mb", "load_ms")


def compress_own(
    model: OwnModel,
    outdir: str | Path,
    config: ExportConfig | None = None,
    axes: dict[str, tuple[str, ...]] | None = None,
    report: BundleReportConfig | None = None,
) -> dict:
    """Export ``model`` (fp32 + dynamic int8 ONNX) into ``outdir`` and write the report.

    Args:
        model: from ``OwnModel.prepare``.
        outdir: the bundle directory.
        config: the export; ``int8=False`` skips quantization.
        axes: per-input axis roles (``edgernn.export.axes``).
        report: the latency grid.

    Returns:
        The ``edgernn.report/1`` report, also written as report.json/md/html.

    Example::

        compress_own(OwnModel.prepare(module, "inputs.npz", "mine.pt"), "runs/mine")
    """
    outdir = Path(outdir)
    report = report or BundleReportConfig()
    export_own(model, outdir, config, axes)
    with tempfile.TemporaryDirectory() as temp:
        # Keyed by the graph's input names (the user's file may say arg0, arg1, ...).
        example = Path(temp) / "example.npz"
        np.savez(example, **model.inputs)
        measured = bench(candidates_from_paths([str(outdir)], example=str(example)), _bench(report))
    for row in measured["models"]:
        row["file"] = Path(row["file"]).name  # beside the report, wherever the bundle goes
        row["name"] = f"{row['file']} ort {row['precision']}"
        row["role"] = "final" if row is measured["models"][-1] else "student"
    measured["task"] = TASK
    measured["models"].insert(0, _module_row(model))
    notes = [note for note in measured["notes"] if "--data" not in note]
    # No accuracy guard here (no metric): int8 is off only when asked, and then never shipped.
    skipped = [] if (config or ExportConfig()).int8 else [f"fp32 graphs only: {NO_QUANTIZE}"]
    skipped += [note for note in [read_manifest(outdir)["metrics"].get("note")] if note]
    measured["notes"] = [NOT_MEASURED, NOT_TIMED, *skipped, *notes]
    write_report(measured, outdir)
    return measured


def _bench(config: BundleReportConfig) -> BenchConfig:
    timing = TimingConfig(min_time_s=config.min_time_s, max_time_s=max(2.0, config.min_time_s))
    return BenchConfig(
        batch_sizes=config.batch_sizes,
        seq_lens=config.seq_lens,
        threads=config.threads,
        timing=timing,
        progress=config.progress,
    )


def _module_row(model: OwnModel) -> dict:
    params, nonzero = parameter_counts(model.module)
    return dict.fromkeys(_UNMEASURED) | {
        "name": "teacher",
        "role": "teacher",
        "format": "torch",
        "precision": "fp32",
        "runtime": "torch",
        "file": model.source,
        "size_bytes": serialized_size(model.module),
        "params": params,
        "nonzero_params": nonzero,
        "metric": None,
        "metrics": None,
        "latency": [],
        "skipped": "not timed: your own model kept as it is (see notes)",
    }


def summary_lines(report: dict) -> list[str]:
    """One line per report row (size, p50 at the reference point), then the notes."""
    from edgernn.report.markdown import fmt
    from edgernn.report.schema import latency_at

    point, lines = report["reference"], []
    for row in report["models"]:
        entry = latency_at(row, point) if row["latency"] else None
        timed = (
            f"p50 {fmt(entry['p50_ms'])} ms (batch {point['batch']}, length {point['seq_len']})"
            if entry
            else "not timed"
        )
        lines.append(
            f"{row['name']:>22}: params {row['params']:,}  "
            f"size {row['size_bytes'] / 1024:.1f} KiB  {timed}"
        )
    return lines + [f"note: {note}" for note in report["notes"]]


def summary_ratios(report: dict) -> dict[str, float]:
    """The final graph (last row) against the module (first row), as compress reports them."""
    first, final = report["models"][0], report["models"][-1]
    return {
        "params": final["params"] / first["params"],
        "nonzero_params": final["nonzero_params"] / max(first["nonzero_params"], 1),
        "size": final["size_bytes"] / first["size_bytes"],
    }
