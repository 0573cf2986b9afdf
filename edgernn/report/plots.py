"""The report's figures, drawn with matplotlib and returned as base64 PNG (no files, no links)."""

from __future__ import annotations

import base64
import io

from edgernn.report.compare import comparable, has_jobs, reference_row, summary_entry, timed_as

FIGSIZE = (7.0, 3.6)  # inches at 100 dpi: fits a 1200 px page, two plots per screen


def _figure(height: float = FIGSIZE[1]):
    # Figure() without pyplot: no global state, no GUI backend; savefig uses Agg.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(FIGSIZE[0], height), dpi=100, layout="constrained")
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
    """Task metric against p50 latency (log axis); None when nothing has both.

    With end-to-end job rows (seq2seq, lm) the latency is the whole job per input, and rows
    of one graph call are left out: a decoder step beside a whole translation would mislead.
    """
    point = report["reference"]
    named = []
    for row in _plotted(report):
        entry = summary_entry(row, point)
        if entry is not None and row["metric"] is not None and not row.get("skipped"):
            named.append((row["name"], entry["p50_ms"], row["metric"]))
    if has_jobs(report):
        job = timed_as(reference_row(report), report.get("task"))
        label = f"p50 latency per input, ms: {job.removesuffix(', per input')} (log scale)"
    else:
        label = f"p50 latency, ms: batch {point['batch']}, length {point['seq_len']} (log scale)"
    return _metric_scatter(report, named, label, "Metric vs latency")


def metric_vs_size(report: dict) -> str | None:
    """Task metric against size in KiB (log axis); None when no row has a metric."""
    named = [
        (row["name"], row["size_bytes"] / 1024, row["metric"])
        for row in _plotted(report)
        if row["metric"] is not None
    ]
    return _metric_scatter(report, named, "size, KiB (log scale)", "Metric vs size")


def _plotted(report: dict) -> list[dict]:
    # Jobs present: job rows and untimed stage rows; one graph call is no model's latency,
    # nor is one graph file (an encoder alone) a model's size.
    return [row for row in report["models"] if comparable(report, row) or not row["latency"]]


def _metric_scatter(report: dict, named: list, xlabel: str, title: str) -> str | None:
    """Numbered points (a legend names them), the Pareto front and the teacher's budget."""
    if not named:
        return None
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    metric = report["metric"]
    higher = metric["higher_is_better"] is not False
    rows = (len(named) + 1) // 2
    figure, axes = _figure(height=FIGSIZE[1] + 0.16 * rows)
    points = [(x, score) for _, x, score in named]
    front = pareto_front(points, higher)
    axes.scatter(*zip(*points, strict=True), color="#7f7f7f", zorder=2, label="model")
    line = sorted(points[i] for i in front)
    axes.plot(*zip(*line, strict=True), "o-", color="#d62728", zorder=3, label="Pareto front")
    for number, (_, x, score) in enumerate(named, 1):
        # Numbers, not names: they stay short enough not to cover each other or the points.
        axes.annotate(
            str(number), (x, score), fontsize=7, xytext=(3, 3), textcoords="offset points"
        )
    budget = _budget(report)
    if budget is not None:
        axes.axhline(budget[0], color="#2ca02c", linestyle="--", linewidth=1, label=budget[1])
    axes.set_xscale("log")
    # Plain numbers at 1-2-5 steps (0.05 reads better than 5x10^-2), and on a narrow span
    # (14 to 26 KiB) the minor ticks carry them too, as 1.4x10^1 would not.
    plain = FuncFormatter(lambda value, _: f"{value:.3g}")
    axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(plain)
    narrow = max(x for x, _ in points) < 10 * min(x for x, _ in points)
    axes.xaxis.set_minor_formatter(plain if narrow else NullFormatter())
    axes.set_xlabel(xlabel)
    axes.set_ylabel(metric["name"] or "metric")
    axes.set_title(title)
    axes.legend(fontsize=7, loc="best")
    axes.grid(alpha=0.3, which="both")
    axes.margins(x=0.15, y=0.15)
    key = [f"{number}: {name}" for number, (name, _, _) in enumerate(named, 1)]
    figure.legend(
        [_blank()] * len(key), key, loc="outside lower center", ncol=2, fontsize=6, frameon=False
    )
    return to_png_base64(figure)


def _blank():
    from matplotlib.lines import Line2D

    return Line2D([], [], linestyle="none")


def _budget(report: dict) -> tuple[float, str] | None:
    """The teacher's metric minus the compress tolerance, and its legend label.

    As ``edgernn.metrics.metric_drop``: 1 point below for higher-is-better metrics, 2 %
    relative above for lower-is-better ones (``edgernn.compress.config.DEFAULT_TOLERANCE``).
    """
    from edgernn.compress.config import DEFAULT_TOLERANCE

    teacher = next(
        (r for r in report["models"] if r["role"] == "teacher" and r["metric"] is not None), None
    )
    if teacher is None:
        return None
    higher = report["metric"]["higher_is_better"] is not False
    tolerance = DEFAULT_TOLERANCE[higher]
    if higher:
        return teacher["metric"] - tolerance, f"budget: teacher - {tolerance:g} point"
    return teacher["metric"] * (1 + tolerance / 100), f"budget: teacher + {tolerance:g} %"


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
            and not e.get("stream")  # a streaming call carries state: not a grid point
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
