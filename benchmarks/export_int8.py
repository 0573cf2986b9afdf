"""int8 vs fp32 ONNX bundles of default teachers: file size, test metric, ORT latency.

For each builtin dataset and cell, trains the default teacher with the CLI (skipped when the
checkpoint exists), exports it with ``edgernn export`` (fp32 + int8, scored on the test
split through the torch-free runtime), then times the fp32 and int8 graphs with ONNX
Runtime on one thread, interleaving the two so machine load hits both alike. GRU/RNN bundles
also time the alternative int8 form (``DequantizeLinear`` instead of ``Cast``+``Mul``). The
manifest's per-node int8 record (which nodes run integer kernels, which fell back to
weight-only int8 and what each cost alone on the valid split) goes into the results too.

    .venv/bin/python benchmarks/export_int8.py --work runs/export_int8 \\
        --out benchmarks/results/export_int8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx

from edgernn.bundle.manifest import read_manifest, sha256_bytes, write_manifest
from edgernn.checkpoint import load_checkpoint
from edgernn.data import encode, load_raw
from edgernn.data.builtin import load_builtin
from edgernn.export.int8 import quantize_int8
from edgernn.report.environment import cpu_model
from edgernn.runtime import Runtime

EDGERNN = str(Path(sys.executable).with_name("edgernn"))
BATCHES = (1, 32)
TASKS = {"sentiment": "classify", "ner": "tag", "charlm": "lm", "forecast": "regress"}
TASKS |= {"seqsum": "regress", "translate": "seq2seq"}


def run(*command: str) -> str:
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def prepare(work: Path, name: str, cell: str) -> tuple[Path, Path, float]:
    task = TASKS[name]
    checkpoint, bundle = work / f"{name}-{cell}.pt", work / f"{name}-{cell}"
    if not checkpoint.exists():
        run(EDGERNN, "train", "--task", task, "--data", f"builtin:{name}", "--cell", cell,
            "--quiet", "-o", str(checkpoint))  # fmt: skip
    start = time.perf_counter()
    run(EDGERNN, "export", str(checkpoint), "-o", str(bundle), "--json")
    return checkpoint, bundle, time.perf_counter() - start


def feeds_for(checkpoint: Path, batch: int) -> dict[str, np.ndarray]:
    ckpt = load_checkpoint(checkpoint)
    examples = encode(load_raw(ckpt.meta.source, ckpt.spec.task), ckpt.meta, ckpt.spec.max_len)
    rows = [x for x, _ in examples.splits["test"][:batch]]
    lengths = np.array([len(x) for x in rows], dtype=np.int64)
    shape = (batch, int(lengths.max()), *rows[0].shape[1:])
    inputs = np.zeros(shape, dtype=rows[0].numpy().dtype)
    for index, row in enumerate(rows):
        inputs[index, : len(row)] = row.numpy()
    return {"inputs": inputs, "lengths": lengths}


def median_ms(call, budget_s: float = 1.0, minimum: int = 20) -> float:
    for _ in range(3):
        call()
    times, start = [], time.perf_counter()
    while len(times) < minimum or time.perf_counter() - start < budget_s:
        begin = time.perf_counter()
        call()
        times.append(time.perf_counter() - begin)
    return 1e3 * float(np.median(times))


def latencies(bundle: Path, checkpoint: Path, task: str, cell: str) -> dict:
    runtimes = {p: Runtime(bundle, p, threads=1) for p in ("fp32", "int8")}
    if cell != "lstm" and task != "seq2seq":
        runtimes["int8_dequantize_linear"] = _dequantize_linear_variant(bundle, runtimes["int8"])
    results = {}
    for batch in BATCHES:
        if task == "seq2seq":
            sources = [text for text, _ in load_builtin("translate").test[:batch]]
            calls = {p: (lambda rt=rt, s=sources: rt.translate(s)) for p, rt in runtimes.items()}
        else:
            feeds = feeds_for(checkpoint, batch)
            calls = {p: (lambda rt=rt, f=feeds: rt.run("model", f)) for p, rt in runtimes.items()}
        rounds = [{p: median_ms(call, 0.3) for p, call in calls.items()} for _ in range(3)]
        results[batch] = {p: float(np.median([r[p] for r in rounds])) for p in calls}
    return results


def _dequantize_linear_variant(bundle: Path, int8: Runtime):
    # The same int8 weights (and weight-only choices) in QDQ form, as a one-file bundle.
    variant = bundle.parent / f"{bundle.name}-qdq"
    variant.mkdir(exist_ok=True)
    fp32 = onnx.load(bundle / "model.onnx")
    plan = next(e for e in int8.manifest["files"] if e["path"] == "model.int8.onnx")
    weight_only = plan.get("quantization", {}).get("weight_only", {})
    proto = quantize_int8(fp32, recurrent_form="dequantize_linear", weight_only=weight_only)
    onnx.save(proto, variant / "model.onnx")
    manifest = read_manifest(bundle)
    entry = next(e for e in manifest["files"] if e["path"] == "model.onnx")
    entry = entry | {"sha256": sha256_bytes((variant / "model.onnx").read_bytes())}
    write_manifest(variant, manifest | {"files": [entry]})
    return Runtime(variant, "fp32", threads=1)


def measure(work: Path, name: str, cell: str) -> dict:
    checkpoint, bundle, export_s = prepare(work, name, cell)
    manifest = read_manifest(bundle)
    sizes, quantization = {"fp32": 0, "int8": 0}, {}
    for entry in manifest["files"]:
        if entry["role"] != "step":  # the step graph is an extra; compare like with like
            sizes[entry["precision"]] += entry["size_bytes"]
            if "quantization" in entry:
                quantization[entry["role"]] = entry["quantization"]
    task = manifest["task"]
    return {
        "dataset": name,
        "task": task,
        "cell": cell,
        "export_seconds": round(export_s, 1),
        "size_bytes": sizes,
        "metrics": manifest["metrics"],
        "quantization": quantization,
        "latency_ms": latencies(bundle, checkpoint, task, cell),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| dataset | cell | metric | PyTorch fp32 | ONNX fp32 | ONNX int8 | fp32 KiB | int8 KiB "
        "| int8/fp32 size | latency b=1 fp32 / int8 ms | latency b=32 fp32 / int8 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        metrics = row["metrics"]
        name, results = metrics["metric"], metrics["results"]
        scores = [f"{results[key][name]:.4g}" for key in ("pytorch_fp32", "onnx_fp32", "onnx_int8")]
        size = row["size_bytes"]
        lat = row["latency_ms"]
        timing = [f"{lat[b]['fp32']:.3f} / {lat[b]['int8']:.3f}" for b in BATCHES]
        lines.append(
            f"| {row['dataset']} | {row['cell']} | {name} | {' | '.join(scores)} "
            f"| {size['fp32'] / 1024:.1f} | {size['int8'] / 1024:.1f} "
            f"| {size['int8'] / size['fp32']:.3f} | {' | '.join(timing)} |"
        )
    return "\n".join(lines)


HEADER = """# int8 vs fp32 ONNX bundles of the default teachers

Machine: {cpu}, {cores} cores (shared with other jobs), ONNX Runtime on 1 thread.
Reproduce: `.venv/bin/python benchmarks/export_int8.py` (add `--datasets a,b --cells c,d` to
split the run; rows accumulate in the .json), which runs per dataset and
cell `edgernn train --task TASK --data builtin:NAME --cell CELL --quiet -o CKPT` (default
teacher: hidden 128, embed 64, one layer; skipped when CKPT exists) and
`edgernn export CKPT -o BUNDLE --json` (dynamo exporter, fp32 + int8 per tensor, integer
kernels chosen per node on the valid split, scored on the test split through the torch-free
runtime).

Metric: the dataset's primary test metric, from the bundle manifest (the same metric code
for all three columns). Size: `model.onnx` vs `model.int8.onnx` (encoder + decoder for
seq2seq). Latency: median ms per call of the `model` graph on the first 1 or 32 test
examples (seq2seq: a whole greedy `translate` of 1 or 32 sources), fp32 and int8 timed
alternately, 3 rounds, median of the rounds. Absolute times are noise on a shared box;
compare the two columns of one row.

"""


def qdq_table(rows: list[dict]) -> str:
    lines = [
        "| dataset | cell | batch | fp32 ms | int8 Cast+Mul ms (default) "
        "| int8 DequantizeLinear ms |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        for batch, lat in row["latency_ms"].items():
            if "int8_dequantize_linear" in lat:
                lines.append(
                    f"| {row['dataset']} | {row['cell']} | {batch} | {lat['fp32']:.3f} "
                    f"| {lat['int8']:.3f} | {lat['int8_dequantize_linear']:.3f} |"
                )
    return "\n".join(lines)


def nodes_table(rows: list[dict]) -> str:
    lines = [
        "| dataset | cell | integer-kernel nodes | costliest alone (valid) "
        "| weight-only instead (valid cost alone) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        plans = row.get("quantization", {}).values()
        unit = "" if row["metrics"]["higher_is_better"] else "%"
        drops = {n: d for plan in plans for n, d in plan["sensitivity"].items()}
        integer = sum(len(plan["integer"]) for plan in plans)
        worst = max(drops.values(), default=None)
        fallback = [
            f"{node} ({drops[node]:+.3g}{unit})"
            for plan in plans
            for node in plan["weight_only"]
            if node in drops
        ]
        lines.append(
            f"| {row['dataset']} | {row['cell']} | {integer} "
            f"| {'-' if worst is None else f'{worst:+.3g}{unit}'} | {', '.join(fallback) or '-'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="sentiment,ner,translate,charlm,forecast")
    parser.add_argument("--cells", default="lstm,gru,rnn")
    parser.add_argument("--work", default="runs/export_int8")
    parser.add_argument("--out", default="benchmarks/results/export_int8")
    args = parser.parse_args()
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    # Rows accumulate across runs (one row per dataset and cell), written after each one,
    # so a long run can be split or resumed.
    saved = out.with_suffix(".json")
    rows = json.loads(saved.read_text()) if saved.exists() else []
    for name in args.datasets.split(","):
        for cell in args.cells.split(","):
            row = measure(work, name, cell)
            rows = [r for r in rows if (r["dataset"], r["cell"]) != (name, cell)] + [row]
            saved.write_text(json.dumps(rows, indent=2) + "\n")
    header = HEADER.format(cpu=cpu_model(), cores=len(os.sched_getaffinity(0)))
    text = f"{header}{table(rows)}\n\nGRU/RNN int8 weight forms:\n\n{qdq_table(rows)}\n"
    text += f"\nint8 nodes (metric loss of each integer node alone):\n\n{nodes_table(rows)}\n"
    out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
