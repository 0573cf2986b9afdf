"""The C target against ONNX Runtime int8: test metric, latency at batch 1, bytes per weight.

For each builtin dataset, takes a trained checkpoint (``--reuse DIR/NAME-CELL.pt`` when it
exists, else trains the default teacher with the CLI), exports it with ``edgernn export``
(ONNX fp32 + int8, scored on the test split) and with ``edgernn export --target c`` (int8
and fp32), then scores the C code on the same test split through edgernn's own metric code
(``edgernn.evaluate``: the C outputs stand in for the model's) and times, in one run and
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
import torch
from torch import nn

from edgernn.c import CExportConfig, export_c
from edgernn.c.harness import CFLAGS, compile_harness, find_compiler, run_harness
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
WARNINGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
BUILDS = {"native": ("-O3", "-march=native"), "o2": ("-O2",)}  # timing builds, best first

BENCH_C = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "model.h"
/* stdin as the harness reads it; prints the seconds of `rounds` passes over every sequence */
int main(int argc, char **argv) {
    int32_t count, i, r, rounds = argc > 1 ? atoi(argv[1]) : 1;
    edgernn_input **inputs; int32_t *lengths; float *out; struct timespec a, b;
    if (fread(&count, 4, 1, stdin) != 1) return 2;
    inputs = malloc(sizeof *inputs * count); lengths = malloc(sizeof *lengths * count);
    out = malloc(sizeof *out * EDGERNN_OUTPUT_SIZE * 4096);
    for (i = 0; i < count; ++i) {
        if (fread(&lengths[i], 4, 1, stdin) != 1) return 2;
        inputs[i] = malloc(sizeof **inputs * lengths[i] * EDGERNN_INPUT_SIZE);
        if (fread(inputs[i], sizeof **inputs, lengths[i] * EDGERNN_INPUT_SIZE, stdin)
            != (size_t)(lengths[i] * EDGERNN_INPUT_SIZE)) return 2;
    }
    for (r = 0; r < rounds; ++r) {
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (i = 0; i < count; ++i) edgernn_run(inputs[i], lengths[i], out);
        clock_gettime(CLOCK_MONOTONIC, &b);
        printf("%.9f\n", (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec));
    }
    return 0;
}
"""


def run(*command: str) -> str:
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def scaling(norm: dict, side: str) -> tuple[np.ndarray, np.ndarray]:
    return tuple(np.asarray(norm[f"{side}_{k}"], np.float32) for k in ("mean", "std"))


def raw_features(frames: np.ndarray, norm: dict) -> np.ndarray:
    """Undo the data layer's normalization: the C code takes raw features."""
    mean, std = scaling(norm, "x")
    return (frames * std + mean).astype(np.float32)


class CModel(nn.Module):
    """The compiled C code behind a zoo model's call, so ``evaluate`` scores it unchanged."""

    def __init__(self, binary: Path, checkpoint):
        super().__init__()
        self.binary, self.spec, self.norm = binary, checkpoint.spec, checkpoint.meta.norm

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        spec, rows = self.spec, []
        for row, length in zip(inputs, lengths.tolist(), strict=True):
            frames = row[:length].numpy()
            if spec.vocab_size:  # the data layer hands token ids; the C code takes int32
                rows.append(frames.astype(np.int32))
            else:  # ... and normalized features; the C code normalizes raw ones itself
                rows.append(raw_features(frames, self.norm))
        per_step = spec.task in ("tag", "lm")
        outputs = run_harness(self.binary, rows, spec.num_outputs, per_step)
        if spec.task == "regress":  # evaluate de-normalizes; the C code already did
            mean, std = scaling(self.norm, "y")
            outputs = [(o - mean) / std for o in outputs]
        if not per_step:
            return torch.from_numpy(np.stack(outputs))
        padded = torch.zeros(len(rows), inputs.size(1), spec.num_outputs)
        for index, out in enumerate(outputs):
            padded[index, : len(rows[index])] = torch.from_numpy(out).view(-1, spec.num_outputs)
        return padded


def prepare(work: Path, reuse: Path | None, name: str, cell: str) -> Path:
    for folder in (reuse, work):  # a checkpoint an earlier run trained is reused too
        if folder is not None and (folder / f"{name}-{cell}.pt").exists():
            return folder / f"{name}-{cell}.pt"
    checkpoint = work / f"{name}-{cell}.pt"  # trained as benchmarks/int8_batching.py does
    config = TrainConfig(epochs=EPOCHS[name], patience=100, progress=False)
    trained = train(f"builtin:{name}", TASKS[name], config, cell=cell, hidden=64)
    save_checkpoint(trained, checkpoint)
    return checkpoint


def build_bench(folder: Path, build: str) -> Path:
    source, binary = folder / "bench.c", folder / f"bench-{build}"
    source.write_text(BENCH_C, encoding="utf-8")
    run(find_compiler(), *WARNINGS, *BUILDS[build], f"-I{folder}", "-o", str(binary),
        str(source), str(folder / "model.c"), "-lm")  # fmt: skip
    return binary


def c_latency_ms(binary: Path, sequences: list[np.ndarray]) -> float:
    chunks = [np.int32(len(sequences)).tobytes()]
    for frames in sequences:
        chunks += [np.int32(len(frames)).tobytes(), np.ascontiguousarray(frames).tobytes()]
    done = subprocess.run([str(binary), "1"], input=b"".join(chunks), capture_output=True)
    return 1e3 * float(done.stdout) / len(sequences)


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
    timings = [(precision, build) for precision in ("int8", "fp32") for build in BUILDS]
    c_ms, ort_ms, benches = {key: [] for key in timings}, [], {}
    for precision in ("int8", "fp32"):
        folder = work / f"{name}-{cell}-c-{precision}"
        result = export_c(checkpoint, folder, CExportConfig(precision=precision))
        row[f"c_{precision}_flash_bytes"] = result["flash_bytes"]
        row[f"c_{precision}_ram_bytes"] = result["ram_bytes"]
        row[f"c_{precision}_parity"] = result["parity"]["max_abs_diff"]
        binary = compile_harness(folder, folder / "harness")
        for build in BUILDS:
            benches[precision, build] = build_bench(folder, build)
        row[f"c_{precision}"] = evaluate(CModel(binary, checkpoint), test, checkpoint.meta)[
            row["metric"]
        ]
    for _ in range(ROUNDS):  # interleaved, so machine load hits both alike
        for key in timings:
            c_ms[key].append(c_latency_ms(benches[key], sequences))
        ort_ms.append(ort_latency_ms(bundle / "model.int8.onnx", feeds))
    for precision, build in timings:  # c_int8_ms: the best build; c_int8_o2_ms: -O2
        suffix = "" if build == "native" else f"_{build}"
        row[f"c_{precision}{suffix}_ms"] = float(np.median(c_ms[precision, build]))
    row["onnx_int8_ms"] = float(np.median(ort_ms))
    row["c_int8_bytes_per_weight"] = row["c_int8_flash_bytes"] / row["parameters"]
    row["onnx_int8_bytes_per_weight"] = row["onnx_int8_bytes"] / row["parameters"]
    print(json.dumps(row), flush=True)
    return row


def table(rows: list[dict]) -> str:
    head = (
        "| dataset | cell | metric | PyTorch fp32 | ONNX int8 | C int8 | C fp32 "
        "| C int8 - ONNX int8 | C int8 flash B/weight | ONNX int8 file B/weight | C int8 RAM B "
        "| ms/seq C int8 | ms/seq C fp32 | ms/seq C int8 -O2 | ms/seq C fp32 -O2 "
        "| ms/seq ORT int8 |"
    )
    lines = [head, "|" + "---|" * 16]
    for r in rows:
        cells = [r["dataset"], r["cell"], r["metric"]]
        cells += [f"{r[k]:.4g}" for k in ("pytorch_fp32", "onnx_int8", "c_int8", "c_fp32")]
        cells += [f"{r['c_int8'] - r['onnx_int8']:+.3g}"]
        cells += [f"{r['c_int8_bytes_per_weight']:.3f}", f"{r['onnx_int8_bytes_per_weight']:.3f}"]
        cells += [f"{r['c_int8_ram_bytes']:,}"]
        keys = ("c_int8_ms", "c_fp32_ms", "c_int8_o2_ms", "c_fp32_o2_ms", "onnx_int8_ms")
        cells += [f"{r[k]:.3f}" for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
        "`edgernn.evaluate` on the same test split. Flash: the C arrays "
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
        "own.\n"
    )


if __name__ == "__main__":
    main()
