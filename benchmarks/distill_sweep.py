"""Distillation variants against scratch, many seeds at once, one single-threaded fit per core.

Each job trains the compress-default student (1/4 of the teacher's parameters) of one builtin
dataset either from scratch or distilled with one variant of ``DistillConfig``, with the
student budget (``DistillConfig().train``) and one seed, and appends a JSON line with its
valid and test metric; jobs already in the output file are skipped. Jobs run longest first
in a process pool; none starts after ``--deadline`` seconds, so a time-limited machine still
returns what finished.

    .venv/bin/python benchmarks/distill_sweep.py --teachers runs/teachers_e40 \\
        --grid ner,seqsum:scratch,default,soft --seeds 3 --out runs/sweep.jsonl
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from edgernn.checkpoint import checkpoint_data, load_checkpoint
from edgernn.data.builtin import load_builtin
from edgernn.distill import DistillConfig, StudentConfig, distill, student_spec
from edgernn.errors import EdgeRNNError
from edgernn.evaluate import evaluate
from edgernn.models import build_model
from edgernn.tasks import primary_metric
from edgernn.train import fit

# name: DistillConfig overrides of the defaults, or None for the student trained from scratch
VARIANTS = {
    "scratch": None,
    "default": {},  # T 1, hidden matching; regress: bounded + noise 0.3
    "soft": {"hidden_match": 0.0},  # Hinton's soft targets (regress: with function matching)
    "soft_t2": {"hidden_match": 0.0, "temperature": 2.0},
    "hidden_t2": {"temperature": 2.0},
    "hidden_mse": {"regression_kd": "mse", "augment": 0.0},  # regress: pulled to the teacher
}
# Rough single-thread minutes per fit, to start the long jobs first.
COST = {"translate": 4, "charlm": 3, "ner": 2, "sentiment": 2, "seqsum": 1, "forecast": 1}


def run_job(job: tuple[str, str, int, str]) -> dict:
    torch.set_num_threads(1)
    dataset, variant, seed, teachers = job
    checkpoint = load_checkpoint(Path(teachers) / f"{dataset}.pt")
    data, _ = checkpoint_data(checkpoint)
    overrides = VARIANTS[variant]
    train = replace(DistillConfig().train, seed=seed, progress=False)
    start = time.perf_counter()
    try:
        model = _train(checkpoint, data, overrides, train)
    except EdgeRNNError as error:  # a variant that does not apply to this task
        return {"dataset": dataset, "variant": variant, "seed": seed, "error": str(error)}
    metric = primary_metric(checkpoint.spec.task)[0]
    scores = {s: evaluate(model, data.splits[s], data.meta)[metric] for s in ("valid", "test")}
    return {
        "dataset": dataset,
        "variant": variant,
        "seed": seed,
        "metric": metric,
        **scores,
        "seconds": time.perf_counter() - start,
    }


def _train(checkpoint, data, overrides: dict | None, train) -> torch.nn.Module:
    if overrides is None:
        torch.manual_seed(train.seed)  # the initial weights distill starts from
        return fit(build_model(student_spec(checkpoint.spec, StudentConfig())), data, train)
    return distill(checkpoint.build(), data, None, DistillConfig(train=train, **overrides))


def table(rows: list[dict]) -> str:
    """Markdown: each variant's test metric over seeds, and its gap and wins against scratch."""
    runs: dict[tuple[str, str], dict[int, dict]] = {}
    tasks = {name: load_builtin(name).task for name in {row["dataset"] for row in rows}}
    for row in rows:
        if "error" not in row:
            runs.setdefault((row["dataset"], row["variant"]), {})[row["seed"]] = row
    lines = [
        "| dataset | variant | seeds | test (mean ± sd) | valid (mean) | vs scratch | wins |",
        "|---|---|---|---|---|---|---|",
    ]
    for (dataset, variant), seeds in sorted(runs.items()):
        higher = primary_metric(tasks[dataset])[1]
        test = [seeds[s]["test"] for s in sorted(seeds)]
        valid = statistics.mean(r["valid"] for r in seeds.values())
        scratch = runs.get((dataset, "scratch"), {})
        gap = wins = "–"
        if variant != "scratch" and scratch:
            base = statistics.mean(r["test"] for r in scratch.values())
            mean = statistics.mean(test)
            gap = f"{mean - base:+.2f} pt" if higher else f"{100 * (base - mean) / base:+.1f}%"
            pairs = [(seeds[s]["test"], scratch[s]["test"]) for s in seeds if s in scratch]
            wins = f"{sum((a > b) if higher else (a < b) for a, b in pairs)}/{len(pairs)}"
        spread = f" ± {statistics.stdev(test):.2g}" if len(test) > 1 else ""
        lines.append(
            f"| {dataset} | {variant} | {len(test)} | {statistics.mean(test):.4g}{spread} "
            f"| {valid:.4g} | {gap} | {wins} |"
        )
    return "\n".join(lines)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="DATASETS:VARIANTS",
        help=f"comma-separated builtin names and variants ({', '.join(VARIANTS)}); repeatable",
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--teachers", default="runs/teachers_e40")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--deadline", type=float, default=1e9, help="stop after SECONDS")
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, appended")
    parser.add_argument("--render", action="store_true", help="print OUT's table and stop")
    args = parser.parse_args()
    if args.render:
        print(table(_rows(args.out)))
        return
    jobs = [
        (dataset, variant, seed, args.teachers)
        for datasets, variants in (grid.split(":") for grid in args.grid)
        for dataset in datasets.split(",")
        for variant in variants.split(",")
        for seed in range(args.seeds)
    ]
    done = {(r["dataset"], r["variant"], r["seed"]) for r in _rows(args.out)}
    jobs = [job for job in jobs if job[:3] not in done]  # a rerun resumes
    jobs.sort(key=lambda job: -COST[job[0]])
    deadline = time.monotonic() + args.deadline
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers, maxtasksperchild=1) as pool, args.out.open("a") as out:

        def record(row: dict) -> None:  # in the pool's result thread, as each job ends
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(json.dumps(row), flush=True)

        pending = [pool.apply_async(run_job, (job,), callback=record) for job in jobs]
        while not all(p.ready() for p in pending) and time.monotonic() < deadline:
            time.sleep(1)
        for failed in (p for p in pending if p.ready() and not p.successful()):
            failed.get()  # re-raises the job's error
        pool.terminate()


if __name__ == "__main__":
    main()
