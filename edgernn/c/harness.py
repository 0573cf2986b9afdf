"""Compile generated C with the host's compiler and run it on sequences: the parity check.

The harness (``templates/harness.c``) reads sequences on stdin and writes what
``edgernn_run`` (or ``edgernn_step``, step by step) returns, so Python compares the C code
with PyTorch without any binding layer.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from edgernn.c.codegen import harness_source
from edgernn.c.compiler import find_compiler
from edgernn.errors import EdgeRNNError

CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2")
# What embedded builds often add; the generated code is clean under these too.
STRICT = ("-Wshadow", "-Wconversion", "-Wdouble-promotion", "-Wcast-qual")
STRICT += ("-Wstrict-prototypes", "-Wmissing-prototypes")


def compile_harness(
    source_dir: Path, binary: Path, extra: tuple[str, ...] = (), harness_text: str | None = None
) -> Path:
    """Build ``binary`` from ``source_dir``'s model.c and a harness, with ``CFLAGS``.

    Args:
        source_dir: the folder holding model.h and model.c.
        binary: the executable to write; the harness source is written beside it.
        extra: flags after ``CFLAGS`` (``STRICT``, say).
        harness_text: the harness's C source; the non-seq2seq tasks' one by default.

    Raises:
        EdgeRNNError: no compiler, or the generated code does not compile warning-free.
    """
    compiler = find_compiler()
    if compiler is None:
        raise EdgeRNNError("no C compiler (cc, gcc or clang) on PATH to check the C code with")
    harness = binary.with_suffix(".harness.c")
    harness.write_text(harness_text or harness_source(), encoding="utf-8")
    command = [compiler, *CFLAGS, *extra, f"-I{source_dir}", "-o", str(binary)]
    command += [str(harness), str(source_dir / "model.c"), "-lm"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise EdgeRNNError(f"the generated C code does not compile: {done.stderr.strip()[:500]}")
    return binary


def run_harness(
    binary: Path, sequences: list[np.ndarray], outputs: int, per_step: bool, step: bool = False
) -> list:
    """Feed ``sequences`` ((T, F) float32 frames or (T,) int32 ids) to ``binary``.

    Args:
        binary: a harness from ``compile_harness``.
        sequences: the inputs, one array per sequence.
        outputs: the model's EDGERNN_OUTPUT_SIZE.
        per_step: whether edgernn_run writes outputs for every step (tag, lm).
        step: call edgernn_step frame by frame instead of edgernn_run.

    Returns:
        Per sequence, the float32 outputs (flat) or the int status code when it failed.
    """
    chunks = [np.int32(len(sequences)).tobytes()]
    for frames in sequences:
        chunks += [np.int32(len(frames)).tobytes(), np.ascontiguousarray(frames).tobytes()]
    mode = "step" if step else "run"
    done = subprocess.run([str(binary), mode], input=b"".join(chunks), capture_output=True)
    if done.returncode != 0:
        raise EdgeRNNError(f"the C harness failed: {done.stderr.decode(errors='replace')[:300]}")
    data, results, offset = done.stdout, [], 0
    for frames in sequences:
        status = int(np.frombuffer(data, np.int32, 1, offset)[0])
        offset += 4
        if status != 0:
            results.append(status)
            continue
        count = outputs * (len(frames) if step or per_step else 1)
        results.append(np.frombuffer(data, np.float32, count, offset).copy())
        offset += 4 * count
    return results
