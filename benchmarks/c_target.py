"""The C target against ONNX Runtime int8: test metric, latency at batch 1, bytes per weight.

For each builtin dataset, takes a trained checkpoint (``--reuse DIR/NAME-CELL.pt`` when it
exists, else trains the default teacher with the CLI), exports it with ``edgernn export``
(ONNX fp32 + int8, scored on the test split) and with ``edgernn export --target c`` (int8,
fp32 and integer-only: int8 weights with fixed-point activations), then scores the C code
on the same test split through edgernn's own metric code (``edgernn.evaluate``: the C
outputs stand in for the model's, ``edgernn.c.score.CModule``) and times, in one run and
interleaved, the compiled C (in process, one sequence per call) and the ONNX int8 graph
(ONNX Runtime, one thread, batch 1) on the same test sequences. The C is timed twice: built
``-O2`` for any x86-64 (the portable code) and ``-O3 -march=native`` for this host, which
turns on the engine's AVX2 + FMA kernels where the CPU has them.

    .venv/bin/python benchmarks/c_target.py --reuse runs/int8_batching \\
        --work runs/c_target --out benchmarks/results/c_target
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
import onnxruntime as ort

from edgernn.c import CExportConfig, export_c
from edgernn.c.harness import CFLAGS, compile_harness
from edgernn.c.score import CModule, raw_features
from edgernn.c.timing import BUILDS, WARNINGS, build_bench, c_latency_ms
from edgernn.checkpoint import checkpoint_data, load_checkpoint, save_checkpoint
from edgernn.config import TrainConfig
from edgernn.evaluate import evaluate
from edgernn.report.environment import cpu_model
from edgernn.train import train

EDGERNN = str(Path(sys.executable).with_name("edgernn"))
TASKS = {"sentiment": "classify", "ner": "tag", "charlm": "lm", "forecast": "regress"}
EPOCHS = {"sentiment": 15, "ner": 8, "charlm": 30, "forecast": 3}  # as int8_batching.py
PRIMARY = {"classify": "accuracy", "tag": "entity_f1", "lm": "perplexity", "regress": "mse"}
TIMED = 200  # test sequences timed per round
ROUNDS = 5
# What the C target is exported as: (precision, integer_only); "integer" is int8 weights
# with fixed-point activations (--integer-only), for cores without an FPU.
VARIANTS = {"int8": ("int8", False), "fp32": ("fp32", False), "integer": ("int8", True)}


def run(*command: str) -> str:
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def prepare(work: Path, reuse: Path | None, name: str, cell: str) -> Path:
    for folder in (reuse, work):  # a checkpoint an earlier run trained is reused too
        if folder is not None and (folder / f"{name}-{cell}.pt").exists():
            return folder / f"{name}-{cell}.pt"
    checkpoint = work / f"{name}-{cell}.pt"  # trained as benchmarks/int8_batching.py does
    config = TrainConfig(epochs=EPOCHS[name], patience=100, progress=False)
    trained = train(f"builtin:{name}", TASKS[name], config, cell=cell, hidden=64)
    save_checkpoint(trained, checkpoint)
    return checkpoint


def ort_latency_ms(path: Path, feeds: list[dict]) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    start = time.perf_counter()
    for feed in feeds:
        session.run(None, feed)
    return 1e3 * (time.perf_counter() - start) / len(feeds)


def measure(work: Path, reuse: Path | None, name: str, cell: str) -> dict:
    checkpoint_path = prepare(work, reuse, name, cell)
    checkpoint = load_checkpoint(checkpoint_path)
    bundle = work / f"{name}-{cell}-onnx"
    run(EDGERNN, "export", str(checkpoint_path), "-o", str(bundle), "--json")
    onnx_scores = json.loads((bundle / "manifest.json").read_text())["metrics"]["results"]
    encoded, _ = checkpoint_data(checkpoint)
    test = encoded.splits["test"]
    row = {"dataset": name, "cell": cell, "metric": PRIMARY[checkpoint.spec.task]}
    row["parameters"] = sum(p.numel() for p in checkpoint.build().parameters())
    row["onnx_int8_bytes"] = (bundle / "model.int8.onnx").stat().st_size
    for key, scores in onnx_scores.items():
        row[f"{key}"] = scores[row["metric"]]
    timed = [x.numpy() for x, _ in test[:TIMED]]
    if checkpoint.spec.vocab_size:
        sequences = [x.astype(np.int32) for x in timed]
    else:
        sequences = [raw_features(x, checkpoint.meta.norm) for x in timed]
    dtype = np.int64 if checkpoint.spec.vocab_size else np.float32
    feeds = [{"inputs": x[None].astype(dtype), "lengths": np.array([len(x)])} for x in timed]
    timings = [(variant, build) for variant in VARIANTS for build in BUILDS]
    c_ms, ort_ms, benches = {key: [] for key in timings}, [], {}
    for variant, (precision, integer_only) in VARIANTS.items():
        folder = work / f"{name}-{cell}-c-{variant}"
        config = CExportConfig(precision=precision, integer_only=integer_only)
        result = export_c(checkpoint, folder, config)
        row[f"c_{variant}_flash_bytes"] = result["flash_bytes"]
        row["weights"] = result["weights"]  # matrix entries: 1 byte each under int8
        row[f"c_{variant}_ram_bytes"] = result["ram_bytes"]
        row[f"c_{variant}_parity"] = result["parity"]["max_abs_diff"]
        if integer_only:
            row[f"c_{variant}_parity_vs_fp32"] = result["parity"]["max_abs_diff_vs_fp32"]
        binary = compile_harness(folder, folder / "harness")
        for build in BUILDS:
            benches[variant, build] = build_bench(folder, build)
        scores = evaluate(CModule(binary, checkpoint), test, checkpoint.meta)
        row[f"c_{variant}"] = scores[row["metric"]]
    for _ in range(ROUNDS):  # interleaved, so machine load hits both alike
        for key in timings:
            c_ms[key].append(c_latency_ms(benches[key], sequences))
        ort_ms.append(ort_latency_ms(bundle / "model.int8.onnx", feeds))
    for variant, build in timings:  # c_int8_ms: the best build; c_int8_o2_ms: -O2
        suffix = "" if build == "native" else f"_{build}"
        row[f"c_{variant}{suffix}_ms"] = float(np.median(c_ms[variant, build]))
    row["onnx_int8_ms"] = float(np.median(ort_ms))
    row["c_int8_bytes_per_weight"] = row["c_int8_flash_bytes"] / row["parameters"]
    # int8 flash = 1 byte per weight + 4 bytes per row scale, bias and normalization value.
    row["c_int8_overhead_bytes"] = row["c_int8_flash_bytes"] - row["weights"]
    row["onnx_int8_bytes_per_weight"] = row["onnx_int8_bytes"] / row["parameters"]
    print(json.dumps(row), flush=True)
    return row


def table(rows: list[dict]) -> str:
    head = (
        "| dataset | cell | metric | PyTorch fp32 | ONNX int8 | C int8 | C fp32 | C integer "
        "| C int8 - ONNX int8 | C integer - ONNX int8 | C int8 flash B/weight "
        "| C int8 flash = weights x 1 B + overhead B "
        "| ONNX int8 file B/weight | C int8 RAM B | C integer RAM B "
        "| ms/seq C int8 | ms/seq C fp32 | ms/seq C integer | ms/seq C int8 -O2 "
        "| ms/seq C fp32 -O2 | ms/seq C integer -O2 | ms/seq ORT int8 |"
    )
    lines = [head, "|" + "---|" * 22]
    for r in rows:  # rows from before integer-only have no c_integer*: shown as "-"
        cells = [r["dataset"], r["cell"], r["metric"]]
        keys = ("pytorch_fp32", "onnx_int8", "c_int8", "c_fp32", "c_integer")
        cells += [_number(r, k, ".4g") for k in keys]
        cells += [_gap(r, "c_int8"), _gap(r, "c_integer")]
        cells += [f"{r['c_int8_bytes_per_weight']:.3f}"]
        overhead = r.get("c_int8_overhead_bytes")
        cells += [f"{r['weights']:,} + {overhead:,}" if overhead is not None else "-"]
        cells += [f"{r['onnx_int8_bytes_per_weight']:.3f}"]
        cells += [_number(r, "c_int8_ram_bytes", ","), _number(r, "c_integer_ram_bytes", ",")]
        keys = ("c_int8_ms", "c_fp32_ms", "c_integer_ms", "c_int8_o2_ms", "c_fp32_o2_ms")
        keys += ("c_integer_o2_ms", "onnx_int8_ms")
        cells += [_number(r, k, ".3f") for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _number(row: dict, key: str, spec: str) -> str:
    return format(row[key], spec) if key in row else "-"


def _gap(row: dict, key: str) -> str:
    return f"{row[key] - row['onnx_int8']:+.3g}" if key in row else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/c_target"))
    parser.add_argument("--reuse", type=Path, help="folder of trained NAME-CELL.pt to reuse")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/c_target"))
    parser.add_argument("--datasets", default=",".join(TASKS))
    parser.add_argument("--cells", default="lstm")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    # Rows accumulate across runs (split a long run with --datasets/--cells).
    done = args.out.with_suffix(".json")
    rows = json.loads(done.read_text())["rows"] if done.exists() else []
    for name in args.datasets.split(","):
        for cell in args.cells.split(","):
            rows = [r for r in rows if (r["dataset"], r["cell"]) != (name, cell)]
            rows.append(measure(args.work, args.reuse, name, cell))
    rows.sort(key=lambda r: (list(TASKS).index(r["dataset"]), r["cell"]))
    machine = f"{cpu_model()}, {os.cpu_count()} cores (shared with other jobs)"
    flags = " ".join(CFLAGS)
    reuse = f" --reuse {args.reuse}" if args.reuse else ""
    builds = {name: " ".join((*WARNINGS, *extra)) for name, extra in BUILDS.items()}
    result = {"machine": machine, "cflags": flags, "timing_builds": builds, "rows": rows}
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(
        "# C target vs ONNX Runtime int8\n\n"
        f"Machine: {machine}. C: verified as `cc {flags}`; timed in process, `edgernn_run` "
        "once per sequence, built two ways: `ms/seq C` with `-O3 -march=native` (this host's "
        "CPU, so the engine's AVX2 + FMA kernels are on) and `ms/seq C -O2` for any x86-64 "
        "(the portable C); both with `-std=c99 -Wall -Wextra -Werror -pedantic`. "
        "ORT: `model.int8.onnx` of the default `edgernn export`, one "
        "thread, batch 1. Latency: mean ms per sequence over the first "
        f"{TIMED} test sequences, median of {ROUNDS} interleaved rounds. Metric: the dataset's "
        "primary test metric (perplexity and MSE: lower is better), the C code scored through "
        "`edgernn.evaluate` on the same test split. `C integer`: `--integer-only` (int8 "
        "weights, int16 Q12 activations, int32 sums, table sigmoid/tanh: no floating point), "
        "its metric cost is `C integer - ONNX int8` beside `C int8 - ONNX int8`. "
        "Flash: the C arrays "
        "(`EDGERNN_FLASH_BYTES`); ONNX: the int8 file size.\n\n"
        f"Reproduce: `.venv/bin/python benchmarks/c_target.py{reuse} --datasets D --cells C` "
        "(rows accumulate in the .json). Checkpoints: NAME-CELL.pt under `--reuse` (or "
        "`--work`, where an earlier run trained it) if present, else trained as "
        "`benchmarks/int8_batching.py` trains its teachers (one "
        "layer, hidden 64, embed 64, a few epochs: the same recipe).\n\n" + table(rows) + "\n\n"
        "What is timed: ORT runs the int8 graph with its AVX2 kernels (int8 activations, "
        "the input projection of all steps in one GEMM). The C engine keeps float "
        "activations and does one matrix-vector product per step; built for a CPU with AVX2 "
        "+ FMA it multiplies eight rows at a time with fused multiply-adds and computes the "
        "gates eight units at a time (a vector expf), while the `-O2` build is the portable "
        "C99 a microcontroller compiles, vectorized only as far as the compiler does on its "
        "own. The integer-only engine (`C integer`) has no AVX2 kernels: both its builds are "
        "the portable integer C, int8 x int16 products summed in int32.\n"
    )


if __name__ == "__main__":
    main()
