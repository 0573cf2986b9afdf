"""Distillation with the teacher's outputs cached (edgernn.distill.cache) against without.

A search runs many distillations of one teacher in a worker process; the teacher is frozen,
so its outputs on the training examples are computed in the first epoch of the first trial
and read back after. Per dataset: two students in a row (trial 1: the default student,
trial 2: a narrower GRU), in one process with the cache and in another without it, the two
processes alternating per round so load hits both alike; the table has the median wall
seconds of each trial over the rounds and the ratio.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/teacher_cache.py \\
        --teachers runs/teachers_e40 --datasets seqsum,ner --epochs 4 --rounds 3 \\
        --out benchmarks/results/teacher_cache
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

STUDENTS = ({}, {"cell": "gru", "hidden": 24})  # trial 1: compress's default; trial 2


def trials(teacher: str, epochs: int, cached: bool) -> list[float]:
    """Seconds of each student's distillation, in this process."""
    import edgernn.distill.stage
    from edgernn.checkpoint import checkpoint_data, load_checkpoint
    from edgernn.config import TrainConfig
    from edgernn.distill import DistillConfig, StudentConfig, distill

    if not cached:
        edgernn.distill.stage.teacher_cache = lambda *args, **kwargs: None
    checkpoint = load_checkpoint(teacher)
    data, _ = checkpoint_data(checkpoint, None)
    model = checkpoint.build()
    config = DistillConfig(train=replace(TrainConfig(), epochs=epochs, progress=False))
    seconds = []
    for student in STUDENTS:
        start = time.perf_counter()
        distill(model, data, StudentConfig(**student), config)
        seconds.append(time.perf_counter() - start)
    return seconds


def measure(name: str, teachers: Path, epochs: int, rounds: int) -> dict:
    runs: dict[bool, list[list[float]]] = {True: [], False: []}
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    for _ in range(rounds):
        for cached in (False, True):
            command = [sys.executable, __file__, "--one", str(teachers / f"{name}.pt")]
            command += ["--epochs", str(epochs)] + (["--cached"] if cached else [])
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            runs[cached].append(json.loads(done.stdout.strip().splitlines()[-1]))
    median = {c: [statistics.median(r[i] for r in runs[c]) for i in (0, 1)] for c in runs}
    return {"dataset": name, "epochs": epochs, "rounds": rounds, "runs": runs, "median": median}


def table(rows: list[dict]) -> str:
    lines = [
        "| dataset | epochs | trial 1 s: plain → cached | trial 2 s: plain → cached |",
        "|---|---|---|---|",
    ]
    for r in rows:
        plain, cached = r["median"][False], r["median"][True]
        cells = [f"{plain[i]:.1f} → {cached[i]:.1f} ({plain[i] / cached[i]:.2f}×)" for i in (0, 1)]
        lines.append(f"| {r['dataset']} | {r['epochs']} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teachers", type=Path, default=Path("runs/teachers_e40"))
    parser.add_argument("--datasets", default="seqsum,ner")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/teacher_cache"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a worker: one teacher's trials
    parser.add_argument("--cached", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(trials(args.one, args.epochs, args.cached)))
        return
    from results_file import machine_line, write_results

    rows = [measure(n, args.teachers, args.epochs, args.rounds) for n in args.datasets.split(",")]
    write_results(args.out, {"machine": machine_line("1 thread"), "rows": rows}, table(rows) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
