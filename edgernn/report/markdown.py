"""``report.md``: tables a person can paste into an issue."""

from __future__ import annotations

from edgernn.report.compare import (
    comparable,
    has_jobs,
    is_job,
    reference_row,
    summary_entry,
    timed_as,
)

SIZE_PARTS_TITLE = "Where the bytes are"
SIZE_PARTS_NOTE = (
    "Stored weight bytes by part (head: output layers, attention, bridges); the share is the "
    "embedding's of their sum. A file also holds its format's framing and, for ONNX, the graph."
)


def fmt(value: float | int | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, ``-`` for missing."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:,.0f}"


def ratio(value: float | None, first: float | None) -> float | None:
    return None if value is None or not first else value / first


def summary_rows(report: dict) -> list[dict]:
    """One dict of display strings per model: sizes, metric, reference p50, ratios to row 1.

    A report that timed nothing (``compress --no-export``: no ``reference``) has no latency
    or memory columns; a ``stage`` column appears when some row came from a compress stage.
    With end-to-end job rows (seq2seq, lm), ``timed as`` says what each p50 is, tokens/s and
    the first token's p50 show, and ``p50 x`` divides job rows by the first job row only:
    one call of one graph is never set against a whole translation.
    """
    metric = report["metric"]["name"] or "metric"
    point = report.get("reference")
    first, jobs = report["models"][0], has_jobs(report)
    first_p50 = _p50(reference_row(report), point)
    staged = any(row.get("stage") for row in report["models"])
    rows = []
    for row in report["models"]:
        p50 = _p50(row, point)
        delta = None
        if row["metric"] is not None and first["metric"] is not None:
            delta = row["metric"] - first["metric"]
        shown = {"model": row["name"], "role": row["role"]}
        if staged:
            shown["stage"] = _stage(row)
        shown |= {
            "precision": f"{row['format']} {row['precision']}",
            "size KiB": fmt(row["size_bytes"] / 1024),
            "params": fmt(row["params"]),
            "non-zero": fmt(row["nonzero_params"]),
            metric: fmt(row["metric"], 4),
        }
        if point is not None:
            if jobs:
                shown["timed as"] = timed_as(row, report.get("task"))
            shown["p50 ms"] = fmt(p50) if not row.get("skipped") else "not measured"
            if jobs:
                shown |= _job_columns(summary_entry(row, point) if is_job(row) else None)
            shown |= {
                "peak RSS MB (raw - baseline)": _rss(row),
                "load ms": fmt(row.get("load_ms")),
            }
        shown["size x"] = fmt(ratio(row["size_bytes"], first["size_bytes"]))
        if point is not None:
            shown["p50 x"] = fmt(ratio(p50, first_p50)) if comparable(report, row) else "-"
        shown[f"{metric} delta"] = fmt(delta, 3)
        rows.append(shown)
    return rows


def size_parts_rows(report: dict) -> list[dict]:
    """One dict of display strings per model that recorded ``size_parts``: its stored bytes
    in the embedding, the recurrent layers and the head, and the embedding's share of them.

    In real text models the embedding table holds most bytes; this shows how each stage
    changes that. Reports written before ``size_parts`` existed give no rows.
    """
    rows = []
    for row in report["models"]:
        parts = row.get("size_parts")
        if not parts:
            continue
        total = sum(parts.values())
        share = f"{100 * parts['embedding'] / total:.1f} %" if total else "-"
        shown = {"model": row["name"]}
        shown |= {f"{part} bytes": fmt(size) for part, size in parts.items()}  # rows.PARTS
        rows.append(shown | {"embedding share": share})
    return rows


def _job_columns(entry: dict | None) -> dict:
    entry = entry or {}
    return {
        "tokens/s": fmt(entry.get("tokens_per_s")),
        "first token ms": fmt(entry.get("first_token_p50_ms")),
    }


def _p50(row: dict, point: dict | None) -> float | None:
    return (summary_entry(row, point) or {}).get("p50_ms")


def _stage(row: dict) -> str:
    stage = row.get("stage") or "-"
    return f"{stage} (not kept)" if row.get("kept") is False else stage


def _rss(row: dict) -> str:
    if row.get("ram_bytes") is not None:  # the C target: RAM fixed at compile time
        return f"{row['ram_bytes'] / 2**20:.3f} (C RAM, fixed)"
    if row.get("peak_rss_mb") is None:
        return "-"
    return (
        f"{row['peak_rss_mb']:.1f} ({row['peak_rss_raw_mb']:.0f} - "
        f"{row['peak_rss_baseline_mb']:.0f})"
    )


def grid_rows(report: dict) -> list[dict]:
    """One dict of display strings per measured grid point of every model.

    With ``bench --chunk-ms``, an ``RTF p50 / p99`` column (real-time factor) shows too;
    with end-to-end job rows, ``timed as`` (one call, or which job per input), output
    tokens per second and the first token's p50 / p90.
    """
    entries = [entry for row in report["models"] for entry in row["latency"]]
    streamed = any("real_time_factor" in entry for entry in entries)
    jobs = has_jobs(report)
    labelled = jobs or any(entry.get("stream") for entry in entries)
    rows = []
    for row in report["models"]:
        for entry in row["latency"]:
            shown = {"model": row["name"]}
            if labelled:
                shown["timed as"] = _grid_timed_as(row, entry, report.get("task"))
            shown |= {
                "device": entry["device"],
                "threads": str(entry["threads"]),
                "batch": fmt(entry["batch"]),
                "seq": fmt(entry["seq_len"]),
                "p50 ms": fmt(entry["p50_ms"]),
                "p90 ms": fmt(entry["p90_ms"]),
                "p99 ms": fmt(entry["p99_ms"]),
                "seq/s": fmt(entry["throughput_per_s"]),
                "iterations": str(entry["iterations"]),
            }
            if jobs:
                shown["tokens/s"] = fmt(entry.get("tokens_per_s"))
                shown["first token p50 / p90 ms"] = _first_token(entry)
            if streamed:
                shown["RTF p50 / p99"] = _real_time_factor(entry)
            rows.append(shown)
    return rows


def _grid_timed_as(row: dict, entry: dict, task: str | None) -> str:
    if entry.get("stream"):
        return "one streaming call, state carried"
    return timed_as(row, task, entry)


def _first_token(entry: dict) -> str:
    if "first_token_p50_ms" not in entry:
        return "-"
    return f"{fmt(entry['first_token_p50_ms'])} / {fmt(entry['first_token_p90_ms'])}"


def _real_time_factor(entry: dict) -> str:
    if "real_time_factor" not in entry:
        return "-"
    return f"{fmt(entry['real_time_factor'])} / {fmt(entry['real_time_factor_p99'])}"


def table(rows: list[dict]) -> list[str]:
    """A Markdown table of dicts that share their keys."""
    if not rows:
        return ["(nothing measured)"]
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r[k].replace("|", "/") for k in header) + " |" for r in rows]


def environment_line(report: dict) -> str:
    env = report["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    gpu = f", GPU {env['gpu']}" if env.get("gpu") else ""
    sha = (env.get("git_sha") or "unknown")[:12]
    return f"{env['cpu']}, {env['cores']} cores{gpu}; {versions}; git {sha}"


def title(report: dict) -> str:
    """``Compression report (task)`` when rows come from compress stages, else ``Benchmark``."""
    kind = "Compression" if any(row.get("stage") for row in report["models"]) else "Benchmark"
    return f"{kind} report ({report['task'] or 'ONNX'})"


def headline(report: dict) -> list[str]:
    """The sentences that say what the tables mean."""
    point, metric = report.get("reference"), report["metric"]
    better = {True: "higher is better", False: "lower is better"}.get(metric["higher_is_better"])
    ratios = "Ratios (x) divide by the first row; the metric delta subtracts it."
    if point is None:
        lines = [
            f"Machine: {environment_line(report)}.",
            f"Nothing was timed (no export): sizes, parameters and the metric only. {ratios}",
        ]
    else:
        timing = report["config"]["timing"]
        lines = [
            f"Measured on **{point['device']}**: {environment_line(report)}.",
            _summary_latency(report, point, ratios),
            f"Each point: {timing['warmup']} warm-up calls, then at least {timing['min_iters']} "
            f"timed calls and {timing['min_time_s']} s (at most {timing['max_time_s']} s); "
            "iteration counts are in the grid table.",
        ]
    if metric["name"]:
        lines.append(f"Metric: {metric['name']} on the test split ({better}).")
    if any(row.get("kept") is False for row in report["models"]):
        lines.append("A stage marked (not kept) lost too much on the valid split: it is dropped.")
    return lines


def _summary_latency(report: dict, point: dict, ratios: str) -> str:
    at = f"batch {point['batch']}, sequence length {point['seq_len']}, {point['threads']} thread(s)"
    if not has_jobs(report):
        return f"Summary latency is the median (p50) at {at}. {ratios}"
    reference = reference_row(report)["name"]
    return (
        "Summary latency is the median (p50) of the app's **whole job per input** "
        f"({timed_as(reference_row(report), report.get('task'))}, one thread): what a device "
        f"waits for. p50 x divides those rows by {reference}; rows of one graph call (the grid "
        f"at {at}) are a fraction of a job and get no ratio. Size x divides by the first row; "
        "the metric delta subtracts it."
    )


def render_markdown(report: dict) -> str:
    """The report as Markdown: summary table, where the bytes are, latency grid table (when
    timed), notes.

    Every report goes through here: ``bench``, the compress bundle and ``compress
    --no-export`` (which times nothing, so it has no grid).

    Example::

        Path("report.md").write_text(render_markdown(report))
    """
    lines = [f"# {title(report)}", ""]
    lines += [" ".join(headline(report)), "", "## Summary", ""]
    lines += table(summary_rows(report))
    parts = size_parts_rows(report)
    if parts:
        lines += ["", f"## {SIZE_PARTS_TITLE}", "", SIZE_PARTS_NOTE, ""] + table(parts)
    if report.get("reference") is not None:
        lines += ["", "## Latency grid", ""] + table(grid_rows(report))
    notes = report.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def console_lines(report: dict) -> list[str]:
    """One short line per model for the terminal: p50 at the reference point, size, metric."""
    point = report["reference"]
    lines = [f"p50 at batch {point['batch']}, length {point['seq_len']}, {point['threads']} thr.:"]
    for row in report["models"]:
        if row.get("skipped"):
            lines.append(f"  {row['name']}: {row['skipped']}")
            continue
        entry = summary_entry(row, point) or {}
        metric = (
            "" if row["metric"] is None else f", {report['metric']['name']} {fmt(row['metric'], 4)}"
        )
        rtf = "" if "real_time_factor" not in entry else f", RTF {fmt(entry['real_time_factor'])}"
        if is_job(row):
            rtf += f" per input ({entry.get('job')}), {fmt(entry.get('tokens_per_s'))} tokens/s"
        memory = f"peak RSS +{fmt(row['peak_rss_mb'])} MB"
        if row.get("ram_bytes") is not None:  # the C target's RAM, fixed at compile time
            memory = f"RAM {row['ram_bytes']:,} B (fixed)"
        lines.append(
            f"  {row['name']}: {fmt(entry.get('p50_ms'))} ms{rtf}, "
            f"{fmt(row['size_bytes'] / 1024)} KiB, {memory}{metric}"
        )
    return lines
