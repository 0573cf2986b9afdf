"""``edgernn compress`` with its defaults on every builtin teacher: is the Done-when met?

Done-when: the final model has at most 1/4 of the teacher's parameters and its test metric is
within 1 point of the teacher's (2 % relative for perplexity and MSE). Each dataset runs the
real command in its own process, single-threaded:

    OMP_NUM_THREADS=1 edgernn compress TEACHER.pt --no-export --quiet --json -o OUT/NAME

Teachers are the CLI defaults (``edgernn train --task TASK --data builtin:NAME``), cached.

    .venv/bin/python benchmarks/distill_defaults.py --teachers runs/teachers \\
        --out benchmarks/results/distill_defaults
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from results_file import machine_line, write_results

from edgernn.data.builtin import BUILTINS, load_builtin
from edgernn.metrics import metric_drop
from edgernn.tasks import primary_metric

EDGERNN = str(Path(sys.executable).with_name("edgernn"))
BUDGET = {True: 1.0, False: 2.0}  # points, or percent relative (the Done-when)


def run(args: list[str]) -> str:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run([EDGERNN, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"edgernn {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def measure(name: str, teachers: Path, bundles: Path) -> dict:
    task = BUILTINS[name].task
    teacher = teachers / f"{name}.pt"
    if not teacher.exists():
        run(["train", "--task", task, "--data", f"builtin:{name}", "--quiet", "-o", str(teacher)])
    start = time.perf_counter()
    # The stages only: the export and latency report that follow do not change the student.
    run(["compress", str(teacher), "--no-export", "--quiet", "--json", "-o", str(bundles / name)])
    seconds = time.perf_counter() - start
    report = json.loads((bundles / name / "report.json").read_text())
    rows = report["models"]
    final = [row for row in rows if row["kept"]][-1]
    metric, higher = primary_metric(task)
    drop = metric_drop(rows[0]["metric"], final["metric"], metric)
    params = final["params"] / rows[0]["params"]
    return {
        "dataset": name,
        "task": task,
        "metric": metric,
        "teacher": rows[0]["metric"],
        "final": final["metric"],
        "drop": drop,
        "params_ratio": params,
        "size_ratio": final["size_bytes"] / rows[0]["size_bytes"],
        "stages": [(row["stage"], row["kept"], row["metric"]) for row in rows[1:]],
        "notes": report["notes"],
        "done": params <= 0.25 and drop <= BUDGET[higher],
        "seconds": round(seconds, 1),
    }


def _stage(stages: dict, name: str) -> str:
    if name not in stages:
        return "-"
    kept, value = stages[name]
    return f"{value:.4g} ({'kept' if kept else 'dropped'})"


def table(rows: list[dict]) -> str:
    lines = [
        "| dataset | metric | teacher | distilled | pruned | int8 | final | final vs teacher "
        "| params | size | Done-when | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        stages = {stage: (kept, value) for stage, kept, value in r["stages"]}
        unit = "pt" if primary_metric(r["task"])[1] else "% rel."
        lines.append(
            f"| {r['dataset']} | {r['metric']} | {r['teacher']:.4g} "
            f"| {_stage(stages, 'distill')} | {_stage(stages, 'prune')} "
            f"| {_stage(stages, 'quantize')} | {r['final']:.4g} "
            f"| {-r['drop']:+.2f} {unit} | {r['params_ratio']:.3f} | {r['size_ratio']:.3f} "
            f"| {'met' if r['done'] else 'NOT met'} | {r['seconds']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="", help="comma-separated; default: all")
    parser.add_argument("--teachers", type=Path, default=Path("runs/teachers"))
    parser.add_argument("--bundles", type=Path, default=Path("runs/compressed"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/distill_defaults"))
    args = parser.parse_args()
    load_builtin("sentiment")  # fills the registry
    args.teachers.mkdir(parents=True, exist_ok=True)
    names = args.datasets.split(",") if args.datasets else sorted(BUILTINS)
    rows = []
    for name in names:
        rows.append(measure(name, args.teachers, args.bundles))
        print(json.dumps(rows[-1]), flush=True)
    machine = machine_line("1 thread")
    write_results(args.out, {"machine": machine, "rows": rows}, f"{table(rows)}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
