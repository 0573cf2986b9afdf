"""Report rows (schema ``edgernn.report/1``) of the compress stages, before any timing.

Latency and memory fields are filled by the benchmark harness; a stage that did not measure
them leaves ``latency`` empty and ``peak_rss_mb`` null rather than guessing. The report is
written, like every other, by ``edgernn.report.schema.write_report``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgernn.metrics import HIGHER_IS_BETTER
from edgernn.report.environment import environment
from edgernn.report.schema import SCHEMA

# The keys of ``ModelRow.size_parts``, always all three (head: everything else).
PARTS = ("embedding", "recurrent", "head")


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
    # Stored bytes by part (PARTS): edgernn.models.size.size_by_part, or
    # edgernn.report.onnx_parts.onnx_size_by_part; None in records made before either.
    size_parts: dict | None = None

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
