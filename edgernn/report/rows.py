"""Reports (schema ``edgernn.report/1``): one row per model, as JSON and Markdown.

Latency and memory fields are filled by the benchmark harness; a stage that did not measure
them leaves ``latency`` empty and ``peak_rss_mb`` null rather than guessing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edgernn.bundle.manifest import write_atomic
from edgernn.metrics import HIGHER_IS_BETTER
from edgernn.report.environment import environment
from edgernn.report.schema import SCHEMA


@dataclass
class ModelRow:
    """One model in a report; ``metric`` is None when it was not measured."""

    name: str
    role: str  # teacher | student | final | peer
    precision: str  # fp32 | fp16 | int8
    params: int
    nonzero_params: int
    size_bytes: int
    metric: float | None = None
    metrics: dict = field(default_factory=dict)  # every metric of the task, test split
    format: str = "torch"
    file: str = ""  # empty: an intermediate model that is not saved
    stage: str | None = None  # the compression stage that produced it
    kept: bool = True  # False: measured, but its stage was rejected (e.g. lost too much)
    peak_rss_mb: float | None = None
    peak_rss_baseline_mb: float | None = None
    latency: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def build_report(task: str, metric: str, rows: list[ModelRow], notes: list[str]) -> dict:
    """The ``edgernn.report/1`` dictionary for ``rows`` (first row: the reference)."""
    return {
        "schema": SCHEMA,
        "task": task,
        "environment": environment(),
        "metric": {"name": metric, "higher_is_better": HIGHER_IS_BETTER[metric]},
        "models": [row.to_dict() for row in rows],
        "notes": list(notes),
    }


def render_markdown(report: dict) -> str:
    """A Markdown table of the report's models, relative to the first row."""
    metric = report["metric"]["name"]
    rows = report["models"]
    lines = [
        f"# Compression report ({report['task']})",
        "",
        f"Metric: {metric} (test split; "
        f"{'higher' if report['metric']['higher_is_better'] else 'lower'} is better).",
        "",
        "| model | stage | kept | precision | params | non-zero | size KiB | size vs first "
        f"| {metric} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row["size_bytes"] / rows[0]["size_bytes"]
        score = "not measured" if row["metric"] is None else f"{row['metric']:.4g}"
        lines.append(
            f"| {row['name']} | {row['stage'] or '-'} | {'yes' if row['kept'] else 'no'} "
            f"| {row['precision']} | {row['params']:,} "
            f"| {row['nonzero_params']:,} | {row['size_bytes'] / 1024:.1f} | {ratio:.3f} "
            f"| {score} |"
        )
    env = report["environment"]
    lines += ["", f"Machine: {env['cpu']}, {env['cores']} cores, torch {env['versions']['torch']}."]
    lines += [f"- {note}" for note in report.get("notes", [])]
    return "\n".join(lines) + "\n"


def write_report(report: dict, directory: Path) -> tuple[Path, Path]:
    """Write ``report.md`` then ``report.json`` (last, so its presence means complete)."""
    directory.mkdir(parents=True, exist_ok=True)
    markdown, payload = directory / "report.md", directory / "report.json"
    write_atomic(markdown, render_markdown(report).encode("utf-8"))
    write_atomic(payload, (json.dumps(report, indent=1) + "\n").encode("utf-8"))
    return payload, markdown
