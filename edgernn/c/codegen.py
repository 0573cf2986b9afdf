"""model.c for a ``CModel``: the weights as ``static const`` arrays, then one engine.

The engine (``templates/engine.c``, after the kernels it shares with seq2seq's in
``templates/kernels.c``, before the run/step driver it shares with the integer-only engine in
``templates/driver.c``) is the same C for every model and is specialised by the macros in
model.h; only the arrays and their sizes are generated. model.c checks at compile time that
the flash and RAM sizes model.h states are the sizes the compiler lays out.
"""

from collections.abc import Callable
from importlib import resources

import numpy as np

from edgernn.c.layout import Layout
from edgernn.c.weights import CModel, Linear


def render_source(model: CModel, sizes: Layout, arrays: list, int8: bool) -> str:
    """model.c: the weight arrays, their descriptors, the size checks and the engine."""
    lines = [*preamble(int8), *float_arrays(arrays)]
    lines += descriptors(model, lambda linear: ref(linear, int8))
    lines += checked(model, arrays, float_engine("engine.c", "driver.c"))
    return "\n".join(lines) + "\n"


def preamble(int8: bool) -> list[str]:
    """model.c's first lines for the float engines: includes, the weight type, edgernn_linear."""
    return [
        "/* model.c: weights in flash (static const) and the engine; see model.h. */",
        "#include <math.h>",
        "",
        '#include "model.h"',
        "",
        f"typedef {'int8_t' if int8 else 'float'} edgernn_weight;",
        "",
        "/* y = W x (+ bias); scale is one float per row of an int8 W, NULL for fp32. */",
        "typedef struct {",
        "    const edgernn_weight *weight;",
        "    const float *scale;",
        "    const float *bias;",
        "    int32_t rows;",
        "    int32_t cols;",
        "} edgernn_linear;",
        "",
    ]


def float_arrays(arrays: list) -> list[str]:
    """The arrays of a float engine's model.c, the weight matrices typed ``edgernn_weight``."""
    lines = []
    for ctype, name, values in arrays:
        ctype = "edgernn_weight" if ctype in ("int8_t", "weight") else ctype
        lines += c_array(ctype, name, values)
    return lines


def float_engine(*names: str) -> str:
    """The float engine ``templates/names`` after the kernels it shares (AVX2's first)."""
    return templates("avx2.c", "kernels.c", *names)


def templates(*names: str) -> str:
    """The texts of ``templates/names``, one after the other."""
    return "\n".join(template(name) for name in names)


def descriptors(model: CModel, ref_of: Callable[[Linear], str]) -> list[str]:
    """The ``edgernn_linear`` descriptors of ``model``'s cells, head and embedding."""
    lines = cell_table("edgernn_cells", model.cells, ref_of)
    lines += [f"static const edgernn_linear edgernn_head = {ref_of(model.head)};"]
    if model.embedding is not None:
        lines += [f"static const edgernn_linear edgernn_embedding = {ref_of(model.embedding)};"]
    return lines


def checked(model: CModel, arrays: list, engine: str) -> list[str]:
    """``engine`` between the checks of model.h's sizes: flash and state before it, the
    bidirectional driver's scratch after it (driver.c declares those buffers)."""
    lines = ["", "/* model.h states these sizes; a mismatch stops the build here. */"]
    lines += size_check("flash", [name for _, name, _ in arrays], "EDGERNN_FLASH_BYTES")
    if model.spec.directions == 1:
        check = "sizeof(edgernn_state) == EDGERNN_STATE_BYTES"
        lines += [f"typedef char edgernn_check_state[{check} ? 1 : -1];"]
    lines += ["", engine]
    if model.spec.directions == 2:
        parts = ["seq", "run_h", "run_x", "run_gx", "run_gh"]
        parts += ["run_c"] if model.spec.cell == "lstm" else []
        lines += size_check("scratch", parts, "EDGERNN_SCRATCH_BYTES")
    return lines


def cell_table(name: str, pairs: list, ref_of: Callable[[Linear], str]) -> list[str]:
    """``static const edgernn_linear name[n][2]``: each cell's input and hidden matrices."""
    rows = ",\n".join(f"    {{{ref_of(ih)}, {ref_of(hh)}}}" for ih, hh in pairs)
    return [f"static const edgernn_linear {name}[{len(pairs)}][2] = {{", rows, "};"]


def harness_source() -> str:
    """The test harness (stdin -> edgernn_run/step -> stdout) that verifies an export."""
    return template("harness.c")


def size_check(what: str, names: list[str], macro: str) -> list[str]:
    """A compile-time check that the arrays ``names`` take ``macro`` bytes."""
    # C99 has no _Static_assert: an array of size -1 is the classic compile-time check.
    terms = [f"    sizeof {name} +" for name in names]
    terms[-1] = terms[-1][: -len(" +")]
    return [f"typedef char edgernn_check_{what}[(", *terms, f") == {macro} ? 1 : -1];"]


def template(name: str) -> str:
    """The text of ``templates/name``."""
    return resources.files("edgernn.c").joinpath("templates", name).read_text(encoding="utf-8")


def ref(linear: Linear, int8: bool) -> str:
    """A float engine's ``edgernn_linear`` initializer for ``linear``."""
    scale = f"{linear.name}_scale" if int8 else "NULL"
    bias = f"{linear.name}_b" if linear.bias is not None else "NULL"
    rows, cols = linear.weight.shape
    return f"{{{linear.name}_w, {scale}, {bias}, {rows}, {cols}}}"


def c_array(ctype: str, name: str, values: np.ndarray) -> list[str]:
    """``static const ctype name[n] = {...};``: floats round-trip exactly, ints as they are."""
    flat = values.reshape(-1)
    floats = flat.dtype.kind == "f"
    items = [_float(v) for v in flat] if floats else [str(int(v)) for v in flat]
    per_line = 6 if floats else 16
    rows = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return [f"static const {ctype} {name}[{len(flat)}] = {{", *(f"    {r}," for r in rows), "};"]


def _float(value: np.float32) -> str:
    # 9 significant digits round-trip every float32 exactly.
    text = f"{float(value):.9g}"
    if not any(mark in text for mark in ".en"):
        text += ".0"
    return text + "f"
