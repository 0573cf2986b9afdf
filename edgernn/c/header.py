"""model.h: the macros that specialise the engine, the state struct and the API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgernn import __version__
from edgernn.c.layout import Layout, per_step, streams_pool
from edgernn.c.weights import CModel

if TYPE_CHECKING:
    from edgernn.c.fixed import FixedFormat

CELL_MACROS = {"rnn": "EDGERNN_CELL_RNN", "lstm": "EDGERNN_CELL_LSTM", "gru": "EDGERNN_CELL_GRU"}
POOL_MACROS = {"last": "EDGERNN_POOL_LAST", "mean": "EDGERNN_POOL_MEAN", "max": "EDGERNN_POOL_MAX"}


def render_header(
    model: CModel, sizes: Layout, int8: bool, source: str, fixed: FixedFormat | None = None
) -> str:
    """model.h: the macros, the state struct and the API (``fixed``: integer-only's)."""
    spec = model.spec
    kind = "int8 weights, integer-only" if fixed else ("int8" if int8 else "fp32") + " weights"
    libc = "no floating point, no libc" if fixed else "no libc beyond math.h"
    lines = [
        f"/* model.h: {spec.task} {spec.cell.upper()} model, {spec.layers} layer(s) of "
        f"{spec.hidden} units, {'bi' if spec.bidirectional else 'uni'}directional, {kind}.",
        f" * Written by edgernn {__version__} from {source}; C99, no malloc, {libc}.",
        " * Regenerate rather than edit; README.md says how to use it. */",
    ]
    body = [
        *_header_macros(model, sizes, int8, fixed),
        "",
        "/* Return codes of edgernn_step and edgernn_run. */",
        "#define EDGERNN_OK 0",
        "#define EDGERNN_ERR_LENGTH (-1) /* length < 1, or > EDGERNN_MAX_LEN (bidirectional) */",
        "#define EDGERNN_ERR_TOKEN (-2) /* a token id outside [0, EDGERNN_VOCAB_SIZE) */",
        "",
        *_types(model, fixed),
    ]
    return header_file(lines, body, _api(model, fixed))


def header_file(banner: list[str], body: list[str], api: list[str]) -> str:
    """model.h from its parts: ``banner``, then the include guard around ``body`` (macros and
    types) and ``api`` (the declarations, callable from C++)."""
    lines = [
        *banner,
        "#ifndef EDGERNN_MODEL_H",
        "#define EDGERNN_MODEL_H",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        *body,
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        *api,
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        "#endif /* EDGERNN_MODEL_H */",
        "",
    ]
    return "\n".join(lines)


def _types(model: CModel, fixed: FixedFormat | None) -> list[str]:
    if model.spec.vocab_size:
        frame, input_type = "a token id", "int32_t"
    elif fixed:
        frame, input_type = "raw features, each as value * 2^EDGERNN_INPUT_FRAC_BITS", "int32_t"
    else:
        frame, input_type = "raw unnormalized features", "float"
    output = "int32_t: value * 2^EDGERNN_OUTPUT_FRAC_BITS" if fixed else "float"
    return [
        f"/* One frame: EDGERNN_INPUT_SIZE values ({frame}). */",
        f"typedef {input_type} edgernn_input;",
        f"/* One output ({output}). */",
        f"typedef {'int32_t' if fixed else 'float'} edgernn_output;",
    ]


def _fixed_macros(model: CModel, fixed: FixedFormat) -> list[str]:
    from edgernn.c.fixed import Q

    bits = fixed.output_frac_bits
    lines = [
        "/* Integer-only: x, h, c are int16 with EDGERNN_Q fraction bits, sums int32. */",
        f"#define EDGERNN_Q {Q}",
    ]
    if not model.spec.vocab_size:
        lines += [
            "/* Input frames: int32 raw features in Q(EDGERNN_INPUT_FRAC_BITS), i.e.",
            " * round(feature * 2^EDGERNN_INPUT_FRAC_BITS); normalization happens inside. */",
            f"#define EDGERNN_INPUT_FRAC_BITS {fixed.input_frac_bits}",
        ]
    return lines + [
        "/* Outputs: int32 in Q(EDGERNN_OUTPUT_FRAC_BITS); value = output * EDGERNN_OUTPUT_SCALE",
        " * (logits compare as they are: argmax needs no conversion). */",
        f"#define EDGERNN_OUTPUT_FRAC_BITS {bits}",
        f"#define EDGERNN_OUTPUT_SCALE (1.0 / {1 << bits}.0)",
    ]


def _header_macros(
    model: CModel, sizes: Layout, int8: bool, fixed: FixedFormat | None
) -> list[str]:
    spec = model.spec
    streaming = spec.directions == 1
    values = {
        "EDGERNN_CELL": CELL_MACROS[spec.cell],
        "EDGERNN_GATES": model.gates,
        "EDGERNN_HIDDEN": spec.hidden,
        "EDGERNN_LAYERS": spec.layers,
        "EDGERNN_DIRECTIONS": spec.directions,
        "EDGERNN_STREAMING": int(streaming),
        "EDGERNN_TOKENS": int(spec.vocab_size > 0),
        "EDGERNN_VOCAB_SIZE": spec.vocab_size,
        "EDGERNN_INPUT_SIZE": 1 if spec.vocab_size else spec.input_size,
        "EDGERNN_FEATURES": model.features,
        "EDGERNN_OUTPUT_SIZE": spec.num_outputs,
        "EDGERNN_PER_STEP": int(per_step(spec)),
        "EDGERNN_POOLING": POOL_MACROS[spec.pooling],
        "EDGERNN_POOLED": int(streams_pool(spec)),
        "EDGERNN_DENORMALIZE": int(model.y_norm is not None),
        "EDGERNN_INT8": int(int8),
        "EDGERNN_INTEGER_ONLY": int(fixed is not None),
        "EDGERNN_X_SIZE": sizes.x_size,
        "EDGERNN_WEIGHTS": sizes.weights,
        "EDGERNN_FLASH_BYTES": sizes.flash_bytes,
        "EDGERNN_STATE_BYTES": sizes.state_bytes,
    }
    lines = [
        f"#define {k}_{v} {i}"
        for k, group in (
            ("EDGERNN_CELL", ("RNN", "LSTM", "GRU")),
            ("EDGERNN_POOL", ("LAST", "MEAN", "MAX")),
        )
        for i, v in enumerate(group)
    ]
    lines += [f'#define EDGERNN_TASK "{spec.task}"']
    lines += [f"#define {name} {value}" for name, value in values.items()]
    lines += _fixed_macros(model, fixed) if fixed else []
    return lines + _ram_macros(model, sizes)


def _ram_macros(model: CModel, sizes: Layout) -> list[str]:
    spec = model.spec
    if spec.directions == 1:
        lines = [f"#define EDGERNN_SCRATCH_BYTES {sizes.scratch_bytes} /* edgernn_run's state */"]
    else:
        per_step_values = sizes.seq_buffers * 2 * spec.hidden
        fixed = sizes.scratch_bytes - sizes.value_bytes * per_step_values * spec.max_len
        lines = [
            "/* Longest sequence edgernn_run takes; its buffers grow with it. Define it for every",
            " * file (-DEDGERNN_MAX_LEN=64) to trade length for RAM. */",
            "#ifndef EDGERNN_MAX_LEN",
            f"#define EDGERNN_MAX_LEN {spec.max_len}",
            "#endif",
            f"#define EDGERNN_SEQ_BUFFERS {sizes.seq_buffers}",
            f"#define EDGERNN_SCRATCH_BYTES ({sizes.value_bytes} * EDGERNN_SEQ_BUFFERS * "
            f"EDGERNN_MAX_LEN * EDGERNN_DIRECTIONS * EDGERNN_HIDDEN + {fixed})",
        ]
    return lines + ["#define EDGERNN_RAM_BYTES (EDGERNN_STATE_BYTES + EDGERNN_SCRATCH_BYTES)"]


def _api(model: CModel, fixed: FixedFormat | None) -> list[str]:
    spec = model.spec
    out = "int32_t" if fixed else "float"
    value = "int16_t" if fixed else "float"
    wide = "int32_t" if fixed else "float"
    run = [
        "/* The whole sequence: input holds length frames; output gets EDGERNN_OUTPUT_SIZE",
        "   values"
        + (" per step." if per_step(spec) else " for the sequence.")
        + " Uses static buffers: not reentrant. */",
        f"int edgernn_run(const edgernn_input *input, int32_t length, {out} *output);",
        "",
    ]
    if spec.directions == 2:
        return run
    lstm = spec.cell == "lstm"
    pooled = streams_pool(spec)
    # the 4-byte members first: the integer-only state has int16 ones after them
    return [
        "/* Everything a stream carries between steps, and the scratch one step needs. */",
        "typedef struct {",
        f"    {wide} gx[EDGERNN_GATES * EDGERNN_HIDDEN];",
        f"    {wide} gh[EDGERNN_GATES * EDGERNN_HIDDEN];",
        *([f"    {wide} pool[EDGERNN_HIDDEN];", "    int32_t steps;"] if pooled else []),
        f"    {value} h[EDGERNN_LAYERS][EDGERNN_HIDDEN];",
        *([f"    {value} c[EDGERNN_LAYERS][EDGERNN_HIDDEN];"] if lstm else []),
        f"    {value} x[EDGERNN_X_SIZE];",
        "} edgernn_state;",
        "",
        "void edgernn_init(edgernn_state *state); /* once, before the first step */",
        "void edgernn_reset(edgernn_state *state); /* start a new sequence */",
        "/* One frame in; output gets EDGERNN_OUTPUT_SIZE values: "
        + ("this step's." if per_step(spec) else "the sequence so far's.")
        + " */",
        f"int edgernn_step(edgernn_state *state, const edgernn_input *frame, {out} *output);",
        "",
        *run,
    ]
