"""Which rows a report's summary compares, what each row timed, and the headline ratios.

A seq2seq or language model is used as a whole job: a translation runs the encoder once and
the decoder once per output token, a generation one step per token. One call of one graph
is a fraction of that, so when a report has end-to-end job rows (``row["job"]``, from
``edgernn.bench.jobs``) its latency ratios compare those rows only; rows of one graph call
keep their numbers, labelled as such, and get no ratio.
"""

from __future__ import annotations

from edgernn.report.grid import latency_at

ONE_CALL = "one call of one graph"
JOB_NAMES = {"translate": "whole translation", "generate": "whole generation"}


def is_job(row: dict) -> bool:
    """Whether ``row`` timed the app's whole job per input (translate, generate)."""
    return bool(row.get("job"))


def has_jobs(report: dict) -> bool:
    return any(is_job(row) for row in report["models"])


def summary_entry(row: dict, point: dict | None) -> dict | None:
    """The latency entry a summary quotes for ``row``: a job row's first job (greedy, or
    the generation), else the entry at the reference ``point``."""
    if point is None:
        return None
    if is_job(row):
        return row["latency"][0] if row["latency"] else None
    return latency_at(row, point)


def timed_as(row: dict, task: str | None, entry: dict | None = None) -> str:
    """What one timed sample of ``row`` is, in words (for tables and plot labels)."""
    if not row.get("latency"):
        return "not timed"  # a compress stage's model, or a row that could not run here
    if is_job(row):
        entry = entry or (row["latency"][0] if row.get("latency") else {})
        how = f" ({entry['job']})" if entry.get("job") else ""
        return f"{JOB_NAMES.get(row['job'], row['job'])}{how}, per input"
    if row.get("format") == "torch":
        return {
            "seq2seq": "one teacher-forced pass",
            "lm": "one pass over the sequence",
        }.get(task or "", "one forward pass")
    graph = row.get("graph")
    return f"one call of the {graph} graph" if graph else ONE_CALL


def reference_row(report: dict) -> dict:
    """The row ratios divide by: the first job row when there are jobs, else the first row."""
    rows = report["models"]
    return next((row for row in rows if is_job(row)), rows[0]) if has_jobs(report) else rows[0]


def comparable(report: dict, row: dict) -> bool:
    """Whether ``row``'s latency may be divided by the reference's (same kind of sample)."""
    return is_job(row) or not has_jobs(report)


def compared_row(report: dict) -> dict:
    """The row the headline ratios describe: the final artifact, else the last comparable."""
    rows = [row for row in report["models"] if comparable(report, row)]
    finals = [row for row in rows if row["role"] == "final"]
    measured = [row for row in rows if row.get("latency")]
    return (finals or measured or rows)[-1]


def report_ratios(report: dict) -> dict:
    """What report.json's ``ratios`` holds: the compared row against the reference row.

    Returns:
        ``{"reference", "model", "timed_as", "p50_ms", "tokens_per_s", "first_token_ms",
        "size_bytes"}``; a ratio is None where either side lacks the number.
    """
    point = report.get("reference")
    reference, model = reference_row(report), compared_row(report)
    first, last = summary_entry(reference, point) or {}, summary_entry(model, point) or {}
    return {
        "reference": reference["name"],
        "model": model["name"],
        "timed_as": timed_as(model, report.get("task"), last or None),
        "p50_ms": _ratio(last.get("p50_ms"), first.get("p50_ms")),
        "tokens_per_s": _ratio(last.get("tokens_per_s"), first.get("tokens_per_s")),
        "first_token_ms": _ratio(last.get("first_token_p50_ms"), first.get("first_token_p50_ms")),
        "size_bytes": _ratio(model["size_bytes"], reference["size_bytes"]),
    }


def _ratio(value: float | None, first: float | None) -> float | None:
    return None if value is None or not first else value / first
