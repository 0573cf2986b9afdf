"""model.h: the macros that specialise the engine, the state struct and the API."""

from __future__ import annotations

from edgernn import __version__
from edgernn.c.layout import FLOAT_BYTES, Layout, per_step, streams_pool
from edgernn.c.weights import CModel

CELL_MACROS = {"rnn": "EDGERNN_CELL_RNN", "lstm": "EDGERNN_CELL_LSTM", "gru": "EDGERNN_CELL_GRU"}
POOL_MACROS = {"last": "EDGERNN_POOL_LAST", "mean": "EDGERNN_POOL_MEAN", "max": "EDGERNN_POOL_MAX"}


def render_header(model: CModel, sizes: Layout, int8: bool, source: str) -> str:
    """model.h: the macros, the state struct and the API."""
    spec = model.spec
    lines = [
        f"/* model.h: {spec.task} {spec.cell.upper()} model, {spec.layers} layer(s) of "
        f"{spec.hidden} units, {'bi' if spec.bidirectional else 'uni'}directional, "
        f"{'int8' if int8 else 'fp32'} weights.",
        f" * Written by edgernn {__version__} from {source}; C99, no malloc, no libc beyond",
        " * math.h. Regenerate rather than edit; README.md says how to use it. */",
        "#ifndef EDGERNN_MODEL_H",
        "#define EDGERNN_MODEL_H",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        *_header_macros(model, sizes, int8),
        "",
        "/* Return codes of edgernn_step and edgernn_run. */",
        "#define EDGERNN_OK 0",
        "#define EDGERNN_ERR_LENGTH (-1) /* length < 1, or > EDGERNN_MAX_LEN (bidirectional) */",
        "#define EDGERNN_ERR_TOKEN (-2) /* a token id outside [0, EDGERNN_VOCAB_SIZE) */",
        "",
        "/* One frame: EDGERNN_INPUT_SIZE values (a token id, or raw unnormalized features). */",
        f"typedef {'int32_t' if spec.vocab_size else 'float'} edgernn_input;",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        *_api(model),
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        "#endif /* EDGERNN_MODEL_H */",
        "",
    ]
    return "\n".join(lines)


def _header_macros(model: CModel, sizes: Layout, int8: bool) -> list[str]:
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
        "EDGERNN_X_SIZE": sizes.x_size,
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
    return lines + _ram_macros(model, sizes)


def _ram_macros(model: CModel, sizes: Layout) -> list[str]:
    spec = model.spec
    if spec.directions == 1:
        lines = [f"#define EDGERNN_SCRATCH_BYTES {sizes.scratch_bytes} /* edgernn_run's state */"]
    else:
        per_step_floats = sizes.seq_buffers * 2 * spec.hidden
        fixed = sizes.scratch_bytes // FLOAT_BYTES - per_step_floats * spec.max_len
        lines = [
            "/* Longest sequence edgernn_run takes; its buffers grow with it. Define it for every",
            " * file (-DEDGERNN_MAX_LEN=64) to trade length for RAM. */",
            "#ifndef EDGERNN_MAX_LEN",
            f"#define EDGERNN_MAX_LEN {spec.max_len}",
            "#endif",
            f"#define EDGERNN_SEQ_BUFFERS {sizes.seq_buffers}",
            "#define EDGERNN_SCRATCH_BYTES (4 * (EDGERNN_SEQ_BUFFERS * EDGERNN_MAX_LEN * "
            f"EDGERNN_DIRECTIONS * EDGERNN_HIDDEN + {fixed}))",
        ]
    return lines + ["#define EDGERNN_RAM_BYTES (EDGERNN_STATE_BYTES + EDGERNN_SCRATCH_BYTES)"]


def _api(model: CModel) -> list[str]:
    spec = model.spec
    run = [
        "/* The whole sequence: input holds length frames; output gets EDGERNN_OUTPUT_SIZE",
        "   floats"
        + (" per step." if per_step(spec) else " for the sequence.")
        + " Uses static buffers: not reentrant. */",
        "int edgernn_run(const edgernn_input *input, int32_t length, float *output);",
        "",
    ]
    if spec.directions == 2:
        return run
    lstm = spec.cell == "lstm"
    pooled = streams_pool(spec)
    return [
        "/* Everything a stream carries between steps, and the scratch one step needs. */",
        "typedef struct {",
        "    float h[EDGERNN_LAYERS][EDGERNN_HIDDEN];",
        *(["    float c[EDGERNN_LAYERS][EDGERNN_HIDDEN];"] if lstm else []),
        *(["    float pool[EDGERNN_HIDDEN];", "    int32_t steps;"] if pooled else []),
        "    float x[EDGERNN_X_SIZE];",
        "    float gx[EDGERNN_GATES * EDGERNN_HIDDEN];",
        "    float gh[EDGERNN_GATES * EDGERNN_HIDDEN];",
        "} edgernn_state;",
        "",
        "void edgernn_init(edgernn_state *state); /* once, before the first step */",
        "void edgernn_reset(edgernn_state *state); /* start a new sequence */",
        "/* One frame in; output gets EDGERNN_OUTPUT_SIZE floats: "
        + ("this step's." if per_step(spec) else "the sequence so far's.")
        + " */",
        "int edgernn_step(edgernn_state *state, const edgernn_input *frame, float *output);",
        "",
        *run,
    ]
