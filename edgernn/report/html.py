"""``report.html``: one self-contained page (inline CSS, inline PNG plots, no links out)."""

from __future__ import annotations

from html import escape

from edgernn.report import plots
from edgernn.report.markdown import (
    SIZE_PARTS_NOTE,
    SIZE_PARTS_TITLE,
    grid_rows,
    headline,
    size_parts_rows,
    summary_rows,
    title,
)

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1160px;
       padding: 0 16px; color: #222; }
h1 { font-size: 24px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; white-space: normal; vertical-align: bottom; }
td:first-child, th:first-child { text-align: left; }
tr.skipped td { color: #999; }
.wide { overflow-x: auto; max-width: 100%; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(540px, 1fr)); gap: 12px; }
.plots figure { margin: 0; border: 1px solid #e4e4e4; padding: 6px; }
.plots img { width: 100%; height: auto; display: block; }
table.env td { text-align: left; white-space: normal; }
.missing { color: #777; font-style: italic; padding: 24px; }
"""


def _table(rows: list[dict], skipped: set[str] | None = None) -> str:
    if not rows:
        return '<p class="missing">nothing measured</p>'
    header = "".join(f"<th>{escape(k)}</th>" for k in rows[0])
    body = []
    for row in rows:
        css = ' class="skipped"' if skipped and row.get("model") in skipped else ""
        cells = "".join(f"<td>{escape(str(v))}</td>" for v in row.values())
        body.append(f"<tr{css}>{cells}</tr>")
    return f'<div class="wide"><table><tr>{header}</tr>{"".join(body)}</table></div>'


def _figure(png: str | None, alt: str, missing: str) -> str:
    if png is None:
        return f'<figure><p class="missing">{escape(missing)}</p></figure>'
    return f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{png}"></figure>'


def _plots(report: dict) -> str:
    size = _figure(plots.size_per_model(report), "size per model", "")
    by_size = _figure(
        plots.metric_vs_size(report),
        "metric vs size",
        "Metric vs size: no model has a metric (pass --data).",
    )
    if report.get("reference") is None:  # nothing timed: no latency to plot
        return f'<div class="plots">{by_size}{size}</div>'
    figures = [
        _figure(
            plots.metric_vs_latency(report),
            "metric vs latency",
            "Metric vs latency: no model has both a metric and a latency (pass --data).",
        ),
        by_size,
        size,
        _figure(
            plots.latency_curve(report, "seq_len"),
            "latency vs sequence length",
            "Latency vs sequence length: fewer than two lengths measured.",
        ),
        _figure(
            plots.latency_curve(report, "batch"),
            "latency vs batch size",
            "Latency vs batch size: fewer than two batch sizes measured.",
        ),
    ]
    return f'<div class="plots">{"".join(figures)}</div>'


def _environment(report: dict) -> str:
    env = report["environment"]
    rows = [
        ("CPU", env["cpu"]),
        ("cores", f"{env['cores']} ({env.get('cores_usable')} usable)"),
        ("GPU", env["gpu"] or "none used"),
        ("platform", env.get("platform", "")),
        ("git", env["git_sha"] or "unknown"),
    ] + [(name, version or "not installed") for name, version in env["versions"].items()]
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="env">{body}</table>'


def render_html(report: dict) -> str:
    """The report as one HTML page that opens offline: tables, plots and environment.

    Example::

        Path("report.html").write_text(render_html(report))
    """
    heading = title(report)
    skipped = {row["name"] for row in report["models"] if row.get("skipped")}
    notes = "".join(f"<li>{escape(note)}</li>" for note in report.get("notes") or [])
    intro = "".join(f"<p>{escape(line.replace('**', ''))}</p>" for line in headline(report))
    by_part = size_parts_rows(report)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(heading)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(heading)}</h1>{intro}",
        f"<h2>Summary</h2>{_table(summary_rows(report), skipped)}",
        f"<h2>{SIZE_PARTS_TITLE}</h2><p>{escape(SIZE_PARTS_NOTE)}</p>{_table(by_part)}"
        if by_part
        else "",
        f"<h2>Plots</h2>{_plots(report)}",
        f"<h2>Latency grid (with iteration counts)</h2>{_table(grid_rows(report))}"
        if report.get("reference") is not None
        else "",
        f"<h2>Environment</h2>{_environment(report)}",
        f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
