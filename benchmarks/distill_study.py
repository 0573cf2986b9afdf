"""Distilled student vs the same student trained from scratch, and the default compression.

For every builtin dataset: the CLI-default teacher (LSTM, hidden 128, embed 64, one layer),
then ``edgernn.compress.compress`` with its defaults (distill to at most 1/4 of the teacher's
parameters, prune, dynamic int8), and the same student architecture trained from scratch with
the same budget (same TrainConfig: epochs, patience, seed). All metrics on the test split.

    .venv/bin/python benchmarks/distill_study.py --teachers runs/teachers \\
        --out benchmarks/results/distill_study
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from edgernn.bench.environment import environment
from edgernn.checkpoint import load_checkpoint, save_checkpoint
from edgernn.compress import CompressConfig, compress, load_task_data
from edgernn.config import TrainConfig
from edgernn.data.builtin import BUILTINS, load_builtin
from edgernn.distill import count_params, student_spec
from edgernn.evaluate import evaluate
from edgernn.models import build_model
from edgernn.quantize import metric_drop
from edgernn.tasks import primary_metric
from edgernn.train import fit, train


def teacher_for(name: str, directory: Path):
    """The CLI-default teacher for builtin ``name``, trained once and cached in ``directory``."""
    path = directory / f"{name}.pt"
    if not path.exists():
        task = BUILTINS[name].task
        save_checkpoint(train(f"builtin:{name}", task, TrainConfig(progress=False)), path)
    return load_checkpoint(path)


def scratch(checkpoint, config: CompressConfig) -> tuple[float, float]:
    """The default student's architecture trained on the true targets only: (metric, seconds)."""
    data, _ = load_task_data(checkpoint, None)
    spec = student_spec(checkpoint.spec, config.student)
    start = time.perf_counter()
    torch.manual_seed(config.distill.train.seed)  # the same initial weights distill starts from
    model = fit(build_model(spec), data, config.distill.train)
    metric = primary_metric(spec.task)[0]
    return evaluate(model, data.splits["test"], data.meta)[metric], time.perf_counter() - start


def measure(name: str, directory: Path, config: CompressConfig) -> dict:
    checkpoint = teacher_for(name, directory)
    metric, _ = primary_metric(checkpoint.spec.task)
    start = time.perf_counter()
    rows = {row.stage or "teacher": row for row in compress(checkpoint, config).rows}
    seconds = time.perf_counter() - start
    scratch_metric, scratch_seconds = scratch(checkpoint, config)
    teacher, final = rows["teacher"], rows["quantize"]
    return {
        "dataset": name,
        "task": checkpoint.spec.task,
        "metric": metric,
        "teacher": teacher.metric,
        "scratch": scratch_metric,
        "distilled": rows["distill"].metric,
        "pruned": rows["prune"].metric if "prune" in rows else None,
        "final_int8": final.metric,
        "student_hidden": student_spec(checkpoint.spec, config.student).hidden,
        "params_ratio": final.params / teacher.params,
        "nonzero_ratio": final.nonzero_params / teacher.nonzero_params,
        "size_ratio": final.size_bytes / teacher.size_bytes,
        "teacher_params": count_params(checkpoint.spec),
        "compress_seconds": round(seconds, 1),
        "scratch_seconds": round(scratch_seconds, 1),
    }


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def table(rows: list[dict]) -> str:
    lines = [
        "| dataset | task | metric | teacher | scratch student | distilled student "
        "| distilled vs scratch | final (pruned + int8) | final vs teacher | params | non-zero "
        "| size | compress s | scratch s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        gain = metric_drop(r["scratch"], r["distilled"], r["metric"])
        loss = metric_drop(r["teacher"], r["final_int8"], r["metric"])
        unit = "points" if primary_metric(r["task"])[1] else "% rel."
        lines.append(
            f"| {r['dataset']} | {r['task']} | {r['metric']} | {_fmt(r['teacher'])} "
            f"| {_fmt(r['scratch'])} | {_fmt(r['distilled'])} "
            f"| {'better' if gain < 0 else 'worse' if gain > 0 else 'equal'} by "
            f"{abs(gain):.2f} {unit} | {_fmt(r['final_int8'])} | {-loss:+.2f} {unit} "
            f"| {r['params_ratio']:.3f} | {r['nonzero_ratio']:.3f} | {r['size_ratio']:.3f} "
            f"| {r['compress_seconds']} | {r['scratch_seconds']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="", help="comma-separated; default: all")
    parser.add_argument("--teachers", type=Path, default=Path("runs/teachers"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/distill_study"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_builtin("sentiment")  # fills the registry
    names = args.datasets.split(",") if args.datasets else sorted(BUILTINS)
    config = CompressConfig()
    rows = []
    for name in names:
        rows.append(measure(name, args.teachers, config))
        print(json.dumps(rows[-1]), flush=True)
    env = environment()
    machine = f"{env['cpu']}, {env['cores']} cores, torch {env['versions']['torch']}"
    machine += f", {args.threads} thread(s), git {env['git_sha']}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine, "config": repr(config), "rows": rows}
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(f"Machine: {machine}\n\n{table(rows)}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
