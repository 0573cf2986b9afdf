"""The report's figures, drawn with matplotlib and returned as base64 PNG (no files, no links)."""

from __future__ import annotations

import base64
import io

from edgernn.report.grid import latency_at

FIGSIZE = (7.0, 3.6)  # inches at 100 dpi: fits a 1200 px page, two plots per screen


def _figure():
    # Figure() without pyplot: no global state, no GUI backend; savefig uses Agg.
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGSIZE, dpi=100, layout="constrained")
    return figure, figure.add_subplot()


def to_png_base64(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool) -> list[int]:
    """Indices of points no other point beats on both latency (lower) and metric.

    Example::

        pareto_front([(1.0, 90.0), (2.0, 95.0), (3.0, 94.0)], True)   # [0, 1]
    """
    sign = 1.0 if higher_is_better else -1.0
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -sign * points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if sign * points[i][1] > best:
            front.append(i)
            best = sign * points[i][1]
    return front


def metric_vs_latency(report: dict) -> str | None:
    """Task metric against p50 latency at the reference point; None when nothing has both."""
    point, metric = report["reference"], report["metric"]
    named = []
    for row in report["models"]:
        entry = latency_at(row, point)
        if entry is not None and row["metric"] is not None:
            named.append((row["name"], entry["p50_ms"], row["metric"]))
    if not named:
        return None
    figure, axes = _figure()
    points = [(p50, score) for _, p50, score in named]
    front = pareto_front(points, metric["higher_is_better"] is not False)
    axes.scatter(*zip(*points, strict=True), color="#7f7f7f", zorder=2, label="model")
    line = sorted(points[i] for i in front)
    axes.plot(*zip(*line, strict=True), "o-", color="#d62728", zorder=3, label="Pareto front")
    middle = (min(p for p, _ in points) + max(p for p, _ in points)) / 2
    for name, p50, score in named:
        # Labels point inwards so the ones at the right edge stay inside the plot.
        right = p50 > middle
        axes.annotate(
            name,
            (p50, score),
            fontsize=7,
            xytext=(-4 if right else 4, 4),
            textcoords="offset points",
            ha="right" if right else "left",
        )
    axes.set_xlabel(f"p50 latency, ms (batch {point['batch']}, length {point['seq_len']})")
    axes.set_ylabel(metric["name"] or "metric")
    axes.set_title("Metric vs latency")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    axes.margins(x=0.25, y=0.15)  # room for the name labels beside the points
    return to_png_base64(figure)


def size_per_model(report: dict) -> str:
    """Horizontal bars of each model's size in KiB."""
    figure, axes = _figure()
    names = [row["name"] for row in report["models"]]
    sizes = [row["size_bytes"] / 1024 for row in report["models"]]
    bars = axes.barh(range(len(names)), sizes, color="#1f77b4")
    axes.bar_label(bars, labels=[f"{s:,.1f}" for s in sizes], fontsize=7, padding=2)
    axes.set_yticks(range(len(names)), names, fontsize=7)
    axes.invert_yaxis()  # first model on top, as in the tables
    axes.set_xlabel("size, KiB")
    axes.set_title("Size per model")
    axes.margins(x=0.15)
    return to_png_base64(figure)


def latency_curve(report: dict, axis: str) -> str | None:
    """p50 latency against ``seq_len`` or ``batch``, the other axes at the reference point."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    point = report["reference"]
    other = "batch" if axis == "seq_len" else "seq_len"
    figure, axes = _figure()
    ticks: set[int] = set()
    for row in report["models"]:
        entries = [
            e
            for e in row["latency"]
            if e["threads"] == point["threads"]
            and e[other] in (None, point[other])
            and e[axis] is not None
        ]
        if len(entries) < 2:
            continue
        entries.sort(key=lambda e: e[axis])
        xs = [e[axis] for e in entries]
        axes.plot(xs, [e["p50_ms"] for e in entries], "o-", label=row["name"])
        ticks.update(xs)
    if not ticks:
        return None
    axes.set_xscale("log", base=2)
    axes.set_xticks(sorted(ticks), [str(t) for t in sorted(ticks)])
    axes.xaxis.set_minor_locator(NullLocator())  # log2 minor ticks would hide the grid values
    axes.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")  # 0.05 reads better than 5x10^-2
    axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(plain)
    axes.yaxis.set_minor_locator(NullLocator())
    label = "sequence length" if axis == "seq_len" else "batch size"
    axes.set_xlabel(label)
    axes.set_ylabel("p50 latency, ms")
    other_label = "batch" if other == "batch" else "length"
    axes.set_title(f"Latency vs {label} ({other_label} {point[other]}, {point['threads']} thr.)")
    axes.legend(fontsize=7)
    axes.grid(alpha=0.3, which="both")
    return to_png_base64(figure)
