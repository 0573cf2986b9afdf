"""Data-parallel training throughput: 1 vs N torchrun processes on this machine.

Each configuration trains the same LSTM teacher (hidden 64) on the same data for a fixed
number of epochs (early stopping off) with the same global batch; the time measured is
``fit`` alone (every rank past a barrier, data already loaded and encoded), so it includes
the per-epoch validation on rank 0 that a real run does, but no data loading or start-up.
Three configurations run interleaved, round after round, so that load from other programs
falls on all alike; every run is reported:

- one process with torch's default threads (all cores): a plain ``edgernn train``;
- one process, cores / N threads: what each rank gets, to tell thread contention from
  data parallelism (on a busy machine extra threads can cost more than they give);
- N processes under torchrun, cores / N threads each (``distributed.session``).

    .venv/bin/python benchmarks/ddp_throughput.py --out benchmarks/results/ddp_throughput
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

DATA, TASK = "builtin:sentiment", "classify"
MODEL = {"cell": "lstm", "hidden": 64}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="writes OUT.md and OUT.json")
    parser.add_argument("--nproc", type=int, default=2, help="processes of the parallel runs")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--note", default="", help="conditions of the run, for OUT.md")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.epochs, args.batch_size, args.threads)
        return
    shared = max(1, _cores() // args.nproc)
    configurations = [(1, None), (1, shared), (args.nproc, None)]
    runs = []
    for round_ in range(1, args.rounds + 1):
        for nproc, threads in configurations:
            run = _launch(nproc, threads, args.epochs, args.batch_size) | {"round": round_}
            print(json.dumps(run), flush=True)
            runs.append(run)
    if args.out:
        _write(args, runs)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _launch(nproc: int, threads: int | None, epochs: int, batch_size: int) -> dict:
    """One configuration in fresh processes (torchrun for more than one); rank 0's report."""
    worker = [__file__, "--worker", "--epochs", str(epochs), "--batch-size", str(batch_size)]
    worker += ["--threads", str(threads)] if threads else []
    if nproc == 1:
        command = [sys.executable, *worker]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        command += ["--nproc-per-node", str(nproc), *worker]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _worker(epochs: int, batch_size: int, threads: int | None) -> None:
    """Train once under whatever torchrun set up; rank 0 prints one JSON line."""
    import torch

    from edgernn import distributed
    from edgernn.config import TrainConfig
    from edgernn.models import build_model
    from edgernn.train import fit, prepare

    spec, encoded = prepare(DATA, TASK, **MODEL)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, patience=epochs, progress=False)
    if threads:
        torch.set_num_threads(threads)
    with distributed.session("cpu") as place:
        torch.manual_seed(config.seed)
        model = build_model(spec)
        distributed.barrier()
        start = time.perf_counter()
        fit(model, encoded, config)
        distributed.barrier()
        seconds = time.perf_counter() - start
        if distributed.is_main():
            sequences = epochs * len(encoded.splits["train"])
            report = {"processes": place.world, "threads_per_process": torch.get_num_threads()}
            report |= {"seconds": round(seconds, 2), "sequences_per_s": sequences / seconds}
            print(json.dumps(report), flush=True)


def _write(args: argparse.Namespace, runs: list[dict]) -> None:
    from edgernn.data import load_raw
    from edgernn.report.environment import environment

    train_size = len(load_raw(DATA, TASK).train)
    setup = {"data": DATA, "task": TASK, "train_sequences": train_size, **MODEL}
    setup |= {"epochs": args.epochs, "global_batch": args.batch_size}
    command = f"python benchmarks/ddp_throughput.py --out {args.out} --nproc {args.nproc}"
    command += f" --rounds {args.rounds} --epochs {args.epochs} --batch-size {args.batch_size}"
    result = {"command": command, "setup": setup, "machine": environment(), "runs": runs}
    result["note"] = args.note
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(_markdown(result))


def _markdown(result: dict) -> str:
    machine, setup = result["machine"], result["setup"]
    lines = [
        "# Data-parallel training throughput (torchrun, gloo, CPU)",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Machine: {machine['cpu']}, {machine['cores_usable']} usable cores, "
        f"{machine['platform']}, torch {machine['versions'].get('torch')}.",
        "",
        f"Setup: {setup['data']} ({setup['train_sequences']} training sequences), "
        f"{setup['cell'].upper()} hidden {setup['hidden']}, {setup['epochs']} epochs, global "
        f"batch {setup['global_batch']}; time of `fit` only (after data loading, includes "
        "rank 0's per-epoch validation).",
        "",
        "| round | processes | threads each | seconds | sequences/s |",
        "|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        lines.append(
            f"| {run['round']} | {run['processes']} | {run['threads_per_process']} | "
            f"{run['seconds']:.2f} | {run['sequences_per_s']:.0f} |"
        )
    if result["note"]:
        lines += ["", result["note"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
