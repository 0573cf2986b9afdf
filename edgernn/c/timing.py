"""Latency of a C export on this host: ``edgernn_run`` timed in process, one sequence a call.

``build_bench(folder, build)`` compiles a small timing program with the export's model.c
(``BUILDS``: ``-O3 -march=native`` for this CPU, ``-O2`` for any of its family);
``c_latency_ms(binary, sequences)`` is its mean milliseconds per sequence. Sequences are
what the harness takes ((T,) int32 ids or (T, F) raw float32 features); an integer-only
model's float features are turned into its Q format before the clock starts.

Example::

    bench = build_bench(Path("firmware/model"), "o2")
    ms = c_latency_ms(bench, sequences)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from edgernn.c.harness import find_compiler
from edgernn.errors import EdgeRNNError

WARNINGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
BUILDS = {"native": ("-O3", "-march=native"), "o2": ("-O2",)}  # timing builds, best first

BENCH_C = r"""
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "model.h"
#if EDGERNN_INTEGER_ONLY && !EDGERNN_TOKENS
#define FLOAT_FRAMES 1 /* stdin holds float features: converted to Q format, untimed */
#else
#define FLOAT_FRAMES 0
#endif
/* stdin as the harness reads it; prints the seconds of `rounds` passes over every sequence */
int main(int argc, char **argv) {
    int32_t count, i, r, rounds = argc > 1 ? atoi(argv[1]) : 1;
    edgernn_input **inputs; int32_t *lengths; edgernn_output *out; struct timespec a, b;
    if (fread(&count, 4, 1, stdin) != 1) return 2;
    inputs = malloc(sizeof *inputs * count); lengths = malloc(sizeof *lengths * count);
    out = malloc(sizeof *out * EDGERNN_OUTPUT_SIZE * 4096);
    for (i = 0; i < count; ++i) {
        size_t n, k;
        if (fread(&lengths[i], 4, 1, stdin) != 1) return 2;
        n = (size_t)lengths[i] * EDGERNN_INPUT_SIZE;
        inputs[i] = malloc(sizeof **inputs * n);
#if FLOAT_FRAMES
        for (k = 0; k < n; ++k) {
            float value;
            if (fread(&value, sizeof value, 1, stdin) != 1) return 2;
            inputs[i][k] = (edgernn_input)floor(
                (double)value * (double)(1L << EDGERNN_INPUT_FRAC_BITS) + 0.5);
        }
#else
        (void)k;
        if (fread(inputs[i], sizeof **inputs, n, stdin) != n) return 2;
#endif
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


def build_bench(folder: Path, build: str) -> Path:
    """Compile the timing program with ``folder``'s model.c as ``folder/bench-BUILD``.

    Raises:
        EdgeRNNError: no C compiler, or the build fails.
    """
    compiler = find_compiler()
    if compiler is None:
        raise EdgeRNNError("no C compiler (cc, gcc or clang) on PATH to time the C code with")
    source, binary = folder / "bench.c", folder / f"bench-{build}"
    source.write_text(BENCH_C, encoding="utf-8")
    command = [compiler, *WARNINGS, *BUILDS[build], f"-I{folder}", "-o", str(binary)]
    command += [str(source), str(folder / "model.c"), "-lm"]
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise EdgeRNNError(f"the timing program does not compile: {done.stderr.strip()[:500]}")
    return binary


def c_latency_ms(binary: Path, sequences: list[np.ndarray]) -> float:
    """Mean milliseconds of one ``edgernn_run`` over ``sequences`` (one timed pass)."""
    chunks = [np.int32(len(sequences)).tobytes()]
    for frames in sequences:
        chunks += [np.int32(len(frames)).tobytes(), np.ascontiguousarray(frames).tobytes()]
    done = subprocess.run([str(binary), "1"], input=b"".join(chunks), capture_output=True)
    return 1e3 * float(done.stdout) / len(sequences)
