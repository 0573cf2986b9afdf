"""Default-size teacher vs a tiny model (hidden 8) on every builtin dataset.

The gap is the headroom that distillation and pruning must later preserve. Each run trains
with the CLI's defaults (LSTM, hidden 128, embed 64, one layer) and the same seed; only the
hidden size differs.

    .venv/bin/python benchmarks/teacher_gap.py --out benchmarks/results/teacher_gap
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from edgernn.config import TrainConfig
from edgernn.data.builtin import BUILTINS, load_builtin
from edgernn.report.environment import cpu_model
from edgernn.tasks import primary_metric
from edgernn.train import train


def measure(name: str, hidden: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    task = BUILTINS[name].task
    start = time.perf_counter()
    checkpoint = train(f"builtin:{name}", task, TrainConfig(progress=False), hidden=hidden)
    return {
        "dataset": name,
        "task": task,
        "hidden": hidden,
        "test": checkpoint.metrics["test"],
        "train_seconds": round(time.perf_counter() - start, 1),
    }


def gap(teacher: float, tiny: float, higher: bool) -> str:
    if higher:
        return f"{teacher - tiny:+.1f} points"
    return f"{100 * (tiny - teacher) / tiny:+.1f}% relative"


def table(rows: list[dict]) -> str:
    lines = [
        "| dataset | task | metric | teacher (h=128) | tiny (h=8) | teacher better by "
        "| teacher train s |",
        "|---|---|---|---|---|---|---|",
    ]
    by_key = {(r["dataset"], r["hidden"]): r for r in rows}
    for name in sorted({r["dataset"] for r in rows}):
        teacher, tiny = by_key[(name, 128)], by_key[(name, 8)]
        metric, higher = primary_metric(teacher["task"])
        t, s = teacher["test"][metric], tiny["test"][metric]
        lines.append(
            f"| {name} | {teacher['task']} | {metric} | {t:.4g} | {s:.4g} | {gap(t, s, higher)} "
            f"| {teacher['train_seconds']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="", help="comma-separated; default: all")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/teacher_gap"))
    args = parser.parse_args()
    load_builtin("sentiment")  # fills the registry
    names = args.datasets.split(",") if args.datasets else sorted(BUILTINS)
    rows = []
    for name in names:
        for hidden in (128, 8):
            rows.append(measure(name, hidden, args.threads))
            print(json.dumps(rows[-1]), flush=True)
    machine = f"{cpu_model()}, torch {torch.__version__}, {args.threads} thread(s)"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=1)
    )
    args.out.with_suffix(".md").write_text(f"Machine: {machine}\n\n{table(rows)}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
