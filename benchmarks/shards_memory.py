"""Peak memory of ``edgernn prepare`` and ``edgernn train`` on a dataset bigger than 2 GiB.

Writes a deterministic synthetic classification dataset (``train.jsonl`` of ``--gib`` GiB,
small ``valid.jsonl`` and ``test.jsonl``) under ``--work``, then runs, each in its own
subprocess whose peak resident memory (``ru_maxrss``) is measured:

1. ``edgernn prepare WORK/data --task classify -o WORK/shards`` (streams the files);
2. ``edgernn train --data WORK/shards`` of a tiny LSTM (hidden 8) bounded by ``--max-steps``
   (an epoch over every example would take hours on a CPU), then its validation and test
   scores: the batch order still spans every training example;
3. ``edgernn evaluate`` of that checkpoint on the shards.

The target is a peak under 1 GiB for every step, whatever the data size.

    .venv/bin/python benchmarks/shards_memory.py --out benchmarks/results/shards_memory
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

EDGERNN = [sys.executable, "-m", "edgernn"]
WORDS = [f"w{i}" for i in range(20_000)]
TEXT = ["--no-split-punct"]  # the synthetic words hold no punctuation; splitting is 6x slower
TRAIN = [
    "--hidden",
    "8",
    "--embed",
    "8",
    "--epochs",
    "1",
    "--batch-size",
    "512",
    "--max-steps",
    "60",
]
TRAIN += ["--quiet"]
TARGET_BYTES = 2**30  # 1 GiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/edgernn-shards-memory"))
    parser.add_argument("--gib", type=float, default=2.1, help="size of train.jsonl")
    parser.add_argument("--out", type=Path, help="writes OUT.md and OUT.json")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--measure", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        _measure(args.measure)
        return
    data, shards, model = args.work / "data", args.work / "shards", args.work / "model.pt"
    generated = _generate(data, int(args.gib * 2**30))
    steps = {
        "prepare": [*EDGERNN, "prepare", str(data), "--task", "classify", *TEXT, "-o", str(shards)],
        "train": [*EDGERNN, "train", "--task", "classify", "--data", str(shards), *TRAIN]
        + ["-o", str(model)],
        "evaluate": [*EDGERNN, "evaluate", str(model), "--data", str(shards)],
    }
    runs = {}
    for name, command in steps.items():
        runs[name] = _run(command)
        print(json.dumps({name: runs[name]}), flush=True)
    result = {
        "data": generated,
        "shards_bytes": _size(shards),
        "runs": runs,
        "machine": _machine(),
        "target_peak_rss_bytes": TARGET_BYTES,
    }
    if args.out:
        _write(args.out, result)
    if not args.keep:
        shutil.rmtree(args.work)


def _generate(folder: Path, train_bytes: int) -> dict:
    """Write train/valid/test JSONL; the label is decided by the last word (learnable)."""
    folder.mkdir(parents=True, exist_ok=True)
    start, sizes = time.perf_counter(), {}
    for name, limit in (("train", train_bytes), ("valid", 2_000), ("test", 2_000)):
        rng, path = random.Random(name), folder / f"{name}.jsonl"
        count, written = 0, 0
        with open(path, "w", encoding="utf-8") as out:
            while (written < limit) if name == "train" else (count < limit):
                words = rng.choices(WORDS, k=rng.randint(100, 300))
                label = "pos" if int(words[-1][1:]) % 2 else "neg"
                line = json.dumps({"text": " ".join(words), "label": label}) + "\n"
                written += out.write(line)
                count += 1
        sizes[name] = {"examples": count, "bytes": path.stat().st_size}
    return {"splits": sizes, "seconds": round(time.perf_counter() - start, 1)}


def _run(command: list[str]) -> dict:
    """Run ``command`` under a fresh measuring process: its own children's peak alone."""
    measure = [sys.executable, __file__, "--measure", *command]
    done = subprocess.run(measure, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report | {"command": " ".join(command[2:]).replace(sys.executable, "python")}


def _measure(command: list[str]) -> None:
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = child.communicate()[0]
    if child.returncode != 0:
        print(output, file=sys.stderr)
        raise SystemExit(child.returncode)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    tail = output.strip().splitlines()[-4:]
    print(
        json.dumps(
            {
                "peak_rss_bytes": peak,
                "seconds": round(time.perf_counter() - start, 1),
                "output_tail": tail,
            }
        )
    )


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


def _machine() -> dict:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": len(os.sched_getaffinity(0)),
        "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _write(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    train = result["data"]["splits"]["train"]
    lines = [
        "# Peak memory with data bigger than memory (`edgernn prepare` shards)",
        "",
        f"Generated by `benchmarks/shards_memory.py`: synthetic classification JSONL, train "
        f"{train['bytes'] / 2**30:.2f} GiB ({train['examples']:,} examples of 100-300 words "
        f"from 20,000), valid and test 2,000 examples each; shards "
        f"{result['shards_bytes'] / 2**30:.2f} GiB. Machine: {result['machine']['cores']} "
        f"cores, {result['machine']['memory_bytes'] / 2**30:.0f} GiB RAM, shared with other "
        "jobs. Peak RSS is `ru_maxrss` of each command's process; target under 1 GiB.",
        "",
        "| step | command | peak RSS | wall time |",
        "|---|---|---|---|",
    ]
    for name, run in result["runs"].items():
        lines.append(
            f"| {name} | `{run['command']}` | {run['peak_rss_bytes'] / 2**20:,.0f} MiB | "
            f"{run['seconds']:,.0f} s |"
        )
    lines += [
        "",
        "Last lines printed by train:",
        "",
        "```",
        *result["runs"]["train"]["output_tail"],
        "```",
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
