"""The ``edgernn.report/1`` schema: checking a report and writing it out (md, html, json)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgernn.atomic import write_atomic
from edgernn.report.compare import report_ratios
from edgernn.report.grid import latency_at, reference_point
from edgernn.report.html import render_html
from edgernn.report.markdown import render_markdown

__all__ = [
    "SCHEMA",
    "latency_at",
    "reference_point",
    "render_html",
    "render_markdown",
    "schema_problems",
    "write_report",
]

SCHEMA = "edgernn.report/1"
ROLES = ("teacher", "student", "final", "peer")
# Field -> allowed types, for each model row and each latency entry (DESIGN.md, plus extras).
MODEL_FIELDS = {
    "name": str,
    "role": str,
    "format": str,
    "precision": str,
    "file": str,
    "size_bytes": int,
    "params": int,
    "nonzero_params": int,
    "metric": (float, int, type(None)),
    "peak_rss_mb": (float, type(None)),
    "peak_rss_baseline_mb": (float, type(None)),
    "latency": list,
}
# Fields a row or entry may lack (reports written before them stay valid) but that must be
# of these types when present.
OPTIONAL_MODEL_FIELDS = {
    "graph": (str, type(None)),  # a bundle graph's role: model | step | encoder | decoder
    "job": (str, type(None)),  # translate | generate: the app's whole job per input
    "metrics": (dict, type(None)),
    "load_ms": (float, type(None)),
    "size_parts": (dict, type(None)),  # stored bytes: embedding, recurrent, head
}
_NUMBER = (float, int)
OPTIONAL_LATENCY_FIELDS = {
    "job": str,  # greedy | beam 4 | 32 tokens, temperature 0
    "input_source": str,  # the test split or generated inputs
    "inputs": int,  # distinct inputs timed
    "tokens_per_s": _NUMBER,  # output tokens per second of the job
    "output_tokens_mean": _NUMBER,
    "first_token_p50_ms": _NUMBER,  # seq2seq: encoder + first decoder step; lm: prefix + 1
    "first_token_p90_ms": _NUMBER,
    "stream": bool,  # one streaming call with the state carried from the previous one
    "chunk_ms": _NUMBER,
    "real_time_factor": _NUMBER,
    "real_time_factor_p99": _NUMBER,
}
LATENCY_FIELDS = {
    "device": str,
    "batch": (int, type(None)),
    "seq_len": (int, type(None)),
    "threads": int,
    "p50_ms": float,
    "p90_ms": float,
    "p99_ms": float,
    "throughput_per_s": float,
    "iterations": int,
}


def schema_problems(report: dict) -> list[str]:
    """Everything in ``report`` that breaks ``edgernn.report/1``; empty when it conforms.

    Example::

        assert schema_problems(report) == []
    """
    problems = [] if report.get("schema") == SCHEMA else [f"schema is not {SCHEMA}"]
    for key, kind in (("task", (str, type(None))), ("environment", dict), ("metric", dict)):
        if not isinstance(report.get(key), kind):
            problems.append(f"{key} missing or of the wrong type")
    for env_key in ("cpu", "cores", "gpu", "versions", "git_sha"):
        if env_key not in report.get("environment", {}):
            problems.append(f"environment.{env_key} missing")
    for row in report.get("models", []):
        where = f"model {row.get('name')!r}"
        problems += _check(row, MODEL_FIELDS, where)
        problems += _check(row, OPTIONAL_MODEL_FIELDS, where, required=False)
        if row.get("role") not in ROLES:
            problems.append(f"model {row.get('name')!r}: role {row.get('role')!r}")
        for entry in row.get("latency", []):
            where = f"latency of {row.get('name')!r}"
            problems += _check(entry, LATENCY_FIELDS, where)
            problems += _check(entry, OPTIONAL_LATENCY_FIELDS, where, required=False)
    if not report.get("models"):
        problems.append("no models")
    return problems


def _check(record: dict, fields: dict, where: str, required: bool = True) -> list[str]:
    problems = []
    for name, kind in fields.items():
        if name not in record:
            if required:
                problems.append(f"{where}: {name} missing")
        elif kind is bool:
            if not isinstance(record[name], bool):
                problems.append(f"{where}: {name} is {type(record[name]).__name__}")
        elif isinstance(record[name], bool) or not isinstance(record[name], kind):
            problems.append(f"{where}: {name} is {type(record[name]).__name__}")
    return problems


def write_report(report: dict, directory: str | os.PathLike) -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` and, last, ``report.json`` into ``directory``.

    Each file goes through a temporary file and a rename, so none is ever half-written; the
    JSON comes last, so its presence means the set is complete. ``report["ratios"]`` is set
    first (``edgernn.report.compare.report_ratios``): the headline the tables show.

    Returns:
        ``{"json": path, "md": path, "html": path}``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if report.get("models"):
        # From the rows as written (compress merges stage rows in after timing), so the JSON
        # headline is the summary table's: end-to-end rows for seq2seq and lm.
        report["ratios"] = report_ratios(report)
    paths = {
        "md": write_atomic(directory / "report.md", render_markdown(report).encode("utf-8")),
        "html": write_atomic(directory / "report.html", render_html(report).encode("utf-8")),
    }
    payload = json.dumps(report, indent=1) + "\n"
    paths["json"] = write_atomic(directory / "report.json", payload.encode("utf-8"))
    return paths
