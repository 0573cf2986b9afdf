"""Finish a compressed model into a device bundle: ONNX export, then a measured report.

``edgernn compress`` writes ``student.pt`` and the per-stage rows; this adds the verified
ONNX graphs (fp32 + int8) and times the teacher against the final graphs side by side, so the
bundle carries the whole DESIGN.md set: manifest, ONNX files, student.pt, report.{json,md,html}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from edgernn.bench import BenchConfig, TimingConfig, bench, candidates_from_paths
from edgernn.checkpoint import load_checkpoint
from edgernn.export import export_bundle
from edgernn.report.schema import write_report


@dataclass(frozen=True)
class BundleReportConfig:
    """The latency grid of the final report; small by default so compress stays quick."""

    batch_sizes: tuple[int, ...] = (1, 8)
    seq_lens: tuple[int, ...] = (16, 64)
    threads: tuple[int, ...] = (1,)
    min_time_s: float = 0.3  # per grid point; ratios, not absolute times, are the point
    progress: bool = True


def finish_bundle(
    outdir: str | Path,
    teacher_file: str | Path,
    data: str | None = None,
    config: BundleReportConfig | None = None,
) -> dict[str, Path]:
    """Export ``outdir/student.pt`` into ``outdir`` and rewrite the report with latencies.

    Args:
        outdir: a directory ``write_compressed`` filled (student.pt, report.json).
        teacher_file: the teacher checkpoint, measured as the reference row.
        data: DATA for scoring the graphs; default: the data recorded in the checkpoint.
        config: the latency grid.

    Returns:
        The report files (``json``, ``md``, ``html``) by kind.

    Example::

        finish_bundle("runs/bundle", "runs/teacher.pt")
    """
    config = config or BundleReportConfig()
    outdir = Path(outdir)
    export_bundle(load_checkpoint(outdir / "student.pt"), outdir, data=data)
    # The graphs go by file name alone: the folder may be a staging folder, published later.
    candidates = [
        replace(c, name=c.name.removeprefix(f"{outdir.name}/"))
        for c in candidates_from_paths([str(teacher_file), str(outdir)])
        if c.role != "teacher" or c.precision == "fp32"
    ]
    timing = TimingConfig(min_time_s=config.min_time_s, max_time_s=max(2.0, config.min_time_s))
    bench_config = BenchConfig(
        batch_sizes=config.batch_sizes,
        seq_lens=config.seq_lens,
        threads=config.threads,
        data=data or load_checkpoint(teacher_file).meta.source or None,
        timing=timing,
        progress=config.progress,
    )
    measured = bench(candidates, bench_config)
    return write_report(_merge(measured, outdir), outdir)


def _merge(measured: dict, outdir: Path) -> dict:
    # Keep the compress stage rows (metric, params, size per stage) between the measured
    # teacher and the measured ONNX graphs (bench scored those through the runtime).
    stages = json.loads((outdir / "report.json").read_text())
    teacher, *graphs = measured["models"]
    for row in graphs:
        if row.get("precision") == "int8":
            row["role"] = "final"
        # The bundle's own files by name: the report stays true when the folder moves (and
        # the bundle is built in a staging folder before it is published).
        row["file"] = Path(row["file"]).name
    student_rows = [_unmeasured(row) for row in stages["models"] if row.get("role") != "teacher"]
    measured["models"] = [teacher, *student_rows, *graphs]
    measured["notes"] = stages.get("notes", []) + measured.get("notes", [])
    return measured


def _unmeasured(row: dict) -> dict:
    # Intermediate stages are scored but not timed: only the teacher and the shipped graphs are.
    unmeasured = ("peak_rss_mb", "peak_rss_raw_mb", "peak_rss_baseline_mb", "load_ms")
    return dict.fromkeys(unmeasured) | row | {"skipped": "intermediate stage, not timed"}
