"""The seq2seq C target against ONNX Runtime int8: exact match and latency per translation.

Takes a trained seq2seq checkpoint and its ONNX bundle (``edgernn run`` / ``edgernn export``
output), exports the checkpoint with ``edgernn export --target c`` (int8 and fp32), then on
the test split of its data: greedy-decodes every source with the compiled C
(``edgernn_translate``, in process, one source per call), with the ONNX int8 bundle
(``edgernn.runtime.Runtime(...).translate``, one thread, one source per call) and with
PyTorch (``greedy``), and reports exact match, how often the ids agree, and the time per
translation (each source timed ``--repeats`` times, its fastest kept; median and mean over
sources).

    .venv/bin/python benchmarks/c_seq2seq.py runs/recipes/translate_bahdanau/student.pt \\
        --bundle runs/recipes/translate_bahdanau --work /tmp/c_seq2seq \\
        --out benchmarks/results/c_seq2seq.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from edgernn.c.harness import find_compiler
from edgernn.checkpoint import load_checkpoint
from edgernn.data.source import load_raw
from edgernn.report.environment import cpu_model
from edgernn.runtime import Runtime

BUILDS = {"o2": ("-O2",), "native": ("-O3", "-march=native")}
BENCH_C = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "model.h"

/* in: int32 count, repeats; per source int32 length, ids. out: per source int32 n, n ids,
 * then per source the fastest of `repeats` translations in ns (double). */
int main(void)
{
    int32_t count, repeats, i, r;
    int32_t **src, *len, out[1024];
    double *best;
    if (fread(&count, 4, 1, stdin) != 1 || fread(&repeats, 4, 1, stdin) != 1) return 2;
    src = malloc(sizeof *src * (size_t)count);
    len = malloc(sizeof *len * (size_t)count);
    best = malloc(sizeof *best * (size_t)count);
    for (i = 0; i < count; ++i) {
        if (fread(&len[i], 4, 1, stdin) != 1) return 2;
        src[i] = malloc(4 * (size_t)len[i]);
        if (fread(src[i], 4, (size_t)len[i], stdin) != (size_t)len[i]) return 2;
        best[i] = 1e30;
    }
    for (r = 0; r < repeats; ++r) {
        for (i = 0; i < count; ++i) {
            struct timespec a, b;
            int32_t n;
            double ns;
            clock_gettime(CLOCK_MONOTONIC, &a);
            n = edgernn_translate(src[i], len[i], out, 1024);
            clock_gettime(CLOCK_MONOTONIC, &b);
            ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
            best[i] = ns < best[i] ? ns : best[i];
            if (r == 0) {
                fwrite(&n, 4, 1, stdout);
                if (n > 0) fwrite(out, 4, (size_t)n, stdout);
            }
        }
    }
    fwrite(best, sizeof *best, (size_t)count, stdout);
    return 0;
}
"""


def export_c_sources(checkpoint: Path, work: Path, precision: str) -> Path:
    folder = work / f"c-{precision}"
    command = [sys.executable, "-m", "edgernn", "export", str(checkpoint), "--target", "c"]
    command += ["-o", str(folder)] + ([] if precision == "int8" else ["--no-int8"])
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    return folder


def build(folder: Path, flags: tuple[str, ...], name: str) -> Path:
    (folder / "bench.c").write_text(BENCH_C, encoding="utf-8")
    binary = folder / f"bench-{name}"
    command = [find_compiler(), "-std=c99", "-Wall", "-Wextra", *flags, f"-I{folder}"]
    command += ["-o", str(binary), str(folder / "bench.c"), str(folder / "model.c"), "-lm"]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    return binary


def run_c(binary: Path, sources: list[list[int]], repeats: int) -> tuple[list, np.ndarray]:
    chunks = [np.int32(len(sources)).tobytes(), np.int32(repeats).tobytes()]
    for ids in sources:
        chunks += [np.int32(len(ids)).tobytes(), np.asarray(ids, np.int32).tobytes()]
    data = subprocess.run([str(binary)], input=b"".join(chunks), capture_output=True, check=True)
    out, offset, results = data.stdout, 0, []
    for _ in sources:
        n = int(np.frombuffer(out, np.int32, 1, offset)[0])
        offset += 4
        results.append(np.frombuffer(out, np.int32, max(n, 0), offset).tolist())
        offset += 4 * max(n, 0)
    return results, np.frombuffer(out, np.float64, len(sources), offset) / 1e6


def run_ort(runtime: Runtime, src: np.ndarray, lengths: np.ndarray, repeats: int):
    best = np.full(len(lengths), np.inf)
    results = []
    for r in range(repeats):
        for i, n in enumerate(lengths.tolist()):
            row = np.ascontiguousarray(src[i : i + 1, :n])
            start = time.perf_counter()
            ids = runtime.decode_ids(row, lengths[i : i + 1])[0]
            best[i] = min(best[i], (time.perf_counter() - start) * 1e3)
            if r == 0:
                results.append(ids)
    return results, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--bundle", type=Path, required=True, help="its ONNX bundle directory")
    parser.add_argument("--work", type=Path, default=Path("/tmp/c_seq2seq"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/c_seq2seq.json"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    checkpoint = load_checkpoint(args.checkpoint)
    test = load_raw(checkpoint.meta.source, "seq2seq").test
    runtime = Runtime(args.bundle, precision="int8", threads=1)
    src, lengths = runtime.codec.encode([source for source, _ in test])
    sources = [src[i, :n].tolist() for i, n in enumerate(lengths.tolist())]
    targets = [target for _, target in test]

    def exact(ids_list) -> float:
        texts = [runtime.codec.text(ids) for ids in ids_list]
        return 100.0 * np.mean([t == w for t, w in zip(texts, targets, strict=True)])

    model = checkpoint.build().eval()
    torch_ids = model.greedy(torch.from_numpy(src), torch.from_numpy(lengths))
    ort_ids, ort_ms = run_ort(runtime, src, lengths, args.repeats)
    rows = {"pytorch fp32": {"exact_match": exact(torch_ids)}}
    rows["onnx int8 (ORT, 1 thread)"] = _row(exact(ort_ids), ort_ms, ort_ids, torch_ids)
    for precision in ("int8", "fp32"):
        folder = export_c_sources(args.checkpoint, args.work, precision)
        for name, flags in BUILDS.items():
            c_ids, c_ms = run_c(build(folder, flags, name), sources, args.repeats)
            row = _row(exact(c_ids), c_ms, c_ids, torch_ids)
            row["agree_with_onnx_int8"] = sum(a == b for a, b in zip(c_ids, ort_ids, strict=True))
            rows[f"C {precision} ({' '.join(flags)})"] = row
    record = {
        "checkpoint": str(args.checkpoint),
        "spec": str(checkpoint.spec),
        "test_examples": len(test),
        "cpu": cpu_model(),
        "repeats": args.repeats,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(record, indent=1))


def _row(exact: float, ms: np.ndarray, ids: list, torch_ids: list) -> dict:
    return {
        "exact_match": exact,
        "median_ms": float(np.median(ms)),
        "mean_ms": float(np.mean(ms)),
        "agree_with_pytorch": sum(a == b for a, b in zip(ids, torch_ids, strict=True)),
    }


if __name__ == "__main__":
    main()
