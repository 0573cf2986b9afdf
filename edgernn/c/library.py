"""A C export as a shared library called through ctypes: how ``bench`` times the C target.

``header_values(folder)`` reads the plain integer ``#define``s of the export's model.h (the
sizes and switches its README documents); ``CLibrary(folder, work)`` compiles model.c with a
tiny shim into ``work`` (``-O3 -march=native``: the code as built for this CPU) and calls
``edgernn_run`` on one sequence, ``edgernn_step`` frame by frame with the state carried, or,
for seq2seq, ``edgernn_translate`` (greedy) on one source.
A ctypes call costs about a microsecond, included in what is timed.

Example::

    library = CLibrary(Path("firmware/model"), Path("/tmp/build"))
    library.run(np.array([5, 9, 7], np.int32))
"""

from __future__ import annotations

import ctypes
import re
import subprocess
from pathlib import Path

import numpy as np

from edgernn.c.compiler import find_compiler
from edgernn.errors import EdgeRNNError

RESERVED = 4  # <pad>, <unk>, <bos>, <eos>: never generated
NATIVE = ("-std=c99", "-O3", "-march=native", "-fPIC", "-shared")
# sizeof(edgernn_state), which the app allocates, and the RAM bytes as the compiler reads
# the header's expression for them.
SHIM = """#include "model.h"
long edgernn_bench_state_size(void);
long edgernn_bench_ram_bytes(void);
long edgernn_bench_state_size(void)
{
#if defined(EDGERNN_STREAMING) && EDGERNN_STREAMING
    return (long)sizeof(edgernn_state);
#else
    return 0;
#endif
}
long edgernn_bench_ram_bytes(void) { return (long)(EDGERNN_RAM_BYTES); }
"""
_DEFINE = re.compile(r"^#define (EDGERNN_\w+) \(?(-?\d+)\)?(?:\s|$)", re.MULTILINE)
# What bench reads from model.h, by kind of model.
NEEDED = {
    "seq2seq": ("EDGERNN_FLASH_BYTES", "EDGERNN_SRC_VOCAB", "EDGERNN_DECODE_MARGIN"),
    "other": (
        "EDGERNN_FLASH_BYTES",
        "EDGERNN_TOKENS",
        "EDGERNN_INPUT_SIZE",
        "EDGERNN_OUTPUT_SIZE",
        "EDGERNN_PER_STEP",
    ),
}
_TASK = re.compile(r'^#define EDGERNN_TASK "(\w+)"', re.MULTILINE)


def header_values(folder: Path) -> tuple[str, dict[str, int]]:
    """The task and the plain integer ``#define``s of ``folder/model.h``.

    Raises:
        EdgeRNNError: ``folder`` holds no model.h edgernn wrote.
    """
    try:
        text = (Path(folder) / "model.h").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise EdgeRNNError(f"{folder}: cannot read model.h ({error})") from None
    task = _TASK.search(text)
    values = {name: int(value) for name, value in _DEFINE.findall(text)}
    needed = NEEDED["seq2seq" if task and task.group(1) == "seq2seq" else "other"]
    missing = [name for name in needed if name not in values]
    if task is None or missing:
        lacks = f" (it lacks {missing[0]})" if task is not None else ""
        raise EdgeRNNError(
            f"{folder}: model.h is not from this edgernn's export --target c{lacks}; "
            "export the model again"
        )
    return task.group(1), values


def c_precision(values: dict[str, int]) -> str:
    """``int8`` (integer-only included: its weights are int8) or ``fp32``."""
    return "int8" if values.get("EDGERNN_INT8") or values.get("EDGERNN_INTEGER_ONLY") else "fp32"


class CLibrary:
    """``folder``'s model.c compiled into ``work`` as a shared library."""

    def __init__(self, folder: Path, work: Path):
        self.task, self.values = header_values(folder)
        compiler = find_compiler()
        if compiler is None:
            raise EdgeRNNError("no C compiler (cc, gcc or clang) on PATH to build the C code with")
        shim, library = Path(work) / "shim.c", Path(work) / "libedgernn_model.so"
        shim.write_text(SHIM, encoding="utf-8")
        command = [compiler, *NATIVE, f"-I{folder}", "-o", str(library)]
        command += [str(Path(folder) / "model.c"), str(shim), "-lm"]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:  # the first error line: the whole log would bury it
            lines = done.stderr.strip().splitlines() or ["no message"]
            first = next((line for line in lines if "error" in line), lines[0])
            raise EdgeRNNError(f"{folder}: model.c does not build: {first.strip()[:300]}")
        self.lib = ctypes.CDLL(str(library))
        self.lib.edgernn_bench_state_size.restype = ctypes.c_long
        self.lib.edgernn_bench_ram_bytes.restype = ctypes.c_long
        self.state = ctypes.create_string_buffer(max(1, self.lib.edgernn_bench_state_size()))
        self.ram_bytes = int(self.lib.edgernn_bench_ram_bytes())

    @property
    def streaming(self) -> bool:
        return bool(self.values.get("EDGERNN_STREAMING"))

    def frames(self, steps: int, rng: np.random.Generator) -> np.ndarray:
        """A random valid input of ``steps`` frames, in the type the model takes."""
        v = self.values
        vocab = v.get("EDGERNN_SRC_VOCAB") or v.get("EDGERNN_VOCAB_SIZE")
        if self.task == "seq2seq" or v["EDGERNN_TOKENS"]:  # ids past <pad>, <unk>, <bos>, <eos>
            return rng.integers(4 if vocab > 4 else 0, vocab, steps).astype(np.int32)
        frames = rng.standard_normal((steps, v["EDGERNN_INPUT_SIZE"])).astype(np.float32)
        if not v.get("EDGERNN_INTEGER_ONLY"):
            return frames
        return np.round(frames * (1 << v["EDGERNN_INPUT_FRAC_BITS"])).astype(np.int32)

    def run(self, frames: np.ndarray) -> np.ndarray:
        """One sequence's outputs as written (float32, or int32 fixed; seq2seq: the ids)."""
        call, out = self.runner(frames)
        status = call()
        if status < 0 or (status > 0 and self.task != "seq2seq"):
            raise EdgeRNNError(f"the C model refused a valid input (status {status})")
        return out[:status] if self.task == "seq2seq" else out

    def runner(self, frames: np.ndarray):
        """``(call, outputs)``: ``call()`` runs ``edgernn_run`` (seq2seq: ``edgernn_translate``)
        on ``frames`` into ``outputs`` and returns its status (the id count for seq2seq).

        The pointers are made once, so a timed call is the C function and ctypes' own cost.
        """
        data = np.ascontiguousarray(frames)
        if self.task == "seq2seq":  # greedy, at most as many ids as edgernn's search allows
            out = np.zeros(2 * len(data) + self.values["EDGERNN_DECODE_MARGIN"], np.int32)
            run, limit = self.lib.edgernn_translate, [ctypes.c_int32(len(out))]
        else:
            out = self._outputs(len(data) if self.values["EDGERNN_PER_STEP"] else 1)
            run, limit = self.lib.edgernn_run, []
        args = [_pointer(data), ctypes.c_int32(len(data)), _pointer(out), *limit]

        def call(arrays=(data, out)) -> int:  # the default keeps the pointed-to arrays alive
            return run(*args)

        return call, out

    def stepper(self, frames: np.ndarray):
        """``(call, outputs)``: ``call()`` feeds a stream ``frames``, one ``edgernn_step``
        each, the state carried from call to call as an app's stream carries it; ``outputs``
        holds the last step's."""
        out, state, lib = self._outputs(1), self.state, self.lib
        data = np.ascontiguousarray(frames).reshape(len(frames), -1)
        rows, target = [_pointer(row) for row in data], _pointer(out)
        lib.edgernn_init(state)

        def call(arrays=(data, out)) -> None:  # the default keeps the pointed-to arrays alive
            for row in rows:
                lib.edgernn_step(state, row, target)

        return call, out

    def generate(self, prefix: list[int], count: int) -> list[int]:
        """``count`` ids continuing ``prefix`` at temperature 0, as an app's loop over
        ``edgernn_step`` does it: the prefix streamed in, then each argmax fed back; the
        reserved ids 0-3 never chosen, as in ``edgernn.runtime``'s ``generate``."""
        out, frame = self._outputs(1), np.zeros(1, np.int32)
        args = (self.state, _pointer(frame), _pointer(out))
        self.lib.edgernn_init(self.state)
        generated: list[int] = []
        for token in prefix:
            frame[0] = token
            self.lib.edgernn_step(*args)
        while len(generated) < count:
            generated.append(int(np.argmax(out[RESERVED:])) + RESERVED)
            frame[0] = generated[-1]
            self.lib.edgernn_step(*args)
        return generated

    def _outputs(self, steps: int) -> np.ndarray:
        dtype = np.int32 if self.values.get("EDGERNN_INTEGER_ONLY") else np.float32
        return np.zeros(steps * self.values["EDGERNN_OUTPUT_SIZE"], dtype)


def _pointer(array: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(array.ctypes.data)
