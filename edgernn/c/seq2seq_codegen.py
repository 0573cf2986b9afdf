"""model.h and model.c of a seq2seq model, and the flash and RAM they take.

As for the other tasks, only the arrays and the macros are generated; the engine
(``templates/seq2seq.c``, after ``templates/avx2.c`` and ``templates/kernels.c``, the
kernels it shares with the other tasks' engine) is the same C for every model.
model.c checks at compile time that the sizes model.h states are what the compiler lays out.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgernn import __version__
from edgernn.c.codegen import (
    cell_table,
    float_arrays,
    float_engine,
    preamble,
    ref,
    size_check,
    template,
)
from edgernn.c.header import CELL_MACROS, header_file
from edgernn.c.layout import matrix_entries
from edgernn.c.seq2seq_weights import Seq2SeqC
from edgernn.c.weights import Linear
from edgernn.config import GATES
from edgernn.data.vocab import BOS_ID, EOS_ID
from edgernn.runtime.search import DECODE_MARGIN

FLOAT_BYTES = 4


@dataclass(frozen=True)
class Seq2SeqLayout:
    """The sizes of a seq2seq model in C: what model.h states and ``export_c`` returns."""

    flash_bytes: int  # every static const array: weights, int8 scales, biases
    state_bytes: int  # one edgernn_decoder (the app's; one per beam hypothesis)
    scratch_bytes: int  # model.c's static buffers at the default EDGERNN_MAX_SRC_LEN
    per_source_floats: int  # floats of those buffers per source position
    fixed_floats: int  # the rest, in 4-byte units (source_len included)
    x_size: int  # floats of the recurrent-input buffer
    weights: int  # matrix entries: what flash is per weight

    @property
    def ram_bytes(self) -> int:
        return self.state_bytes + self.scratch_bytes


def seq2seq_layout(model: Seq2SeqC, arrays: list) -> Seq2SeqLayout:
    """The sizes of ``model`` whose arrays are ``arrays``; mirrors the statics of seq2seq.c."""
    spec, hidden, width = model.spec, model.spec.hidden, model.width
    lstm = spec.cell == "lstm"
    state = spec.layers * hidden * (2 if lstm else 1)
    buffers = 2 if spec.layers > 1 else 1
    x_size = spec.embed + (width if model.bahdanau else 0)
    per_source = buffers * width + hidden + 1  # sequence buffers, keys, scores
    fixed = (1 + lstm) * (spec.layers * width + hidden)  # final states, the running state
    fixed += x_size + 2 * GATES[spec.cell] * hidden + width + (width + hidden) + hidden
    fixed += hidden * model.bahdanau + spec.num_outputs + state + 1  # ..., logits, search, length
    flash = sum(v.size * (1 if t == "int8_t" else FLOAT_BYTES) for t, _, v in arrays)
    scratch = FLOAT_BYTES * (per_source * spec.max_len + fixed)
    weights = matrix_entries(arrays)
    return Seq2SeqLayout(flash, FLOAT_BYTES * state, scratch, per_source, fixed, x_size, weights)


def render_header(model: Seq2SeqC, sizes: Seq2SeqLayout, int8: bool, source: str) -> str:
    """model.h: the macros, the decoder state and the API."""
    spec = model.spec
    lstm = spec.cell == "lstm"
    lines = [
        f"/* model.h: seq2seq {spec.cell.upper()} encoder-decoder with {spec.attention} "
        f"attention, {spec.layers} layer(s) of {spec.hidden} units, "
        f"{'bi' if spec.bidirectional else 'uni'}directional encoder, "
        f"{'int8' if int8 else 'fp32'} weights.",
        f" * Written by edgernn {__version__} from {source}; C99, no malloc, no libc beyond",
        " * math.h. Regenerate rather than edit; README.md says how to use it. */",
    ]
    body = [
        *_macros(model, sizes, int8),
        "",
        "/* Return codes; edgernn_translate returns the number of ids written, or one of these. */",
        "#define EDGERNN_OK 0",
        "#define EDGERNN_ERR_LENGTH (-1) /* src_len < 1 or > EDGERNN_MAX_SRC_LEN; max_out < 0 */",
        "#define EDGERNN_ERR_TOKEN (-2) /* an id outside its vocabulary */",
        "#define EDGERNN_ERR_NO_SOURCE (-3) /* edgernn_decode_step before any edgernn_encode */",
        "",
        "/* The decoder's state between steps: copy it to branch (beam search keeps one each). */",
        "typedef struct {",
        "    float h[EDGERNN_LAYERS][EDGERNN_HIDDEN];",
        *(["    float c[EDGERNN_LAYERS][EDGERNN_HIDDEN];"] if lstm else []),
        "} edgernn_decoder;",
    ]
    api = [
        "/* Encode a source (src_len ids of meta.json's vocab) into model.c's static memory and",
        "   set *state to the decoder's start. Replaces the previous source; a refused one",
        "   changes nothing. */",
        "int edgernn_encode(const int32_t *src, int32_t src_len, edgernn_decoder *state);",
        "/* One decoder step on the encoded source: the previous target id in (EDGERNN_BOS_ID",
        "   first), EDGERNN_TGT_VOCAB logits out; *state advances. */",
        "int edgernn_decode_step(edgernn_decoder *state, int32_t token, float *logits);",
        "/* Greedy decoding: at most max_out ids (EOS not included) and at most",
        "   2 * src_len + EDGERNN_DECODE_MARGIN steps, as edgernn's greedy search. Returns the",
        "   number of ids written, or a negative status. */",
        "int32_t edgernn_translate(const int32_t *src, int32_t src_len, int32_t *out,"
        " int32_t max_out);",
        "",
    ]
    return header_file(lines, body, api)


def _macros(model: Seq2SeqC, sizes: Seq2SeqLayout, int8: bool) -> list[str]:
    spec = model.spec
    values = {
        "EDGERNN_CELL": CELL_MACROS[spec.cell],
        "EDGERNN_GATES": GATES[spec.cell],
        "EDGERNN_HIDDEN": spec.hidden,
        "EDGERNN_LAYERS": spec.layers,
        "EDGERNN_DIRECTIONS": spec.directions,
        "EDGERNN_WIDTH": model.width,
        "EDGERNN_EMBED": spec.embed,
        "EDGERNN_SRC_VOCAB": spec.vocab_size,
        "EDGERNN_TGT_VOCAB": spec.num_outputs,
        "EDGERNN_BAHDANAU": int(model.bahdanau),
        "EDGERNN_INT8": int(int8),
        "EDGERNN_X_SIZE": sizes.x_size,
        "EDGERNN_SEQ_BUFFERS": 2 if spec.layers > 1 else 1,
        "EDGERNN_BOS_ID": BOS_ID,
        "EDGERNN_EOS_ID": EOS_ID,
        "EDGERNN_DECODE_MARGIN": DECODE_MARGIN,
        "EDGERNN_WEIGHTS": sizes.weights,
        "EDGERNN_FLASH_BYTES": sizes.flash_bytes,
        "EDGERNN_STATE_BYTES": sizes.state_bytes,
    }
    lines = [f"#define EDGERNN_CELL_{name} {i}" for i, name in enumerate(("RNN", "LSTM", "GRU"))]
    lines += ['#define EDGERNN_TASK "seq2seq"']
    lines += [f"#define {name} {value}" for name, value in values.items()]
    return lines + [
        "/* Longest source edgernn_encode takes; its buffers grow with it. Define it for every",
        " * file (-DEDGERNN_MAX_SRC_LEN=64) to trade length for RAM. */",
        "#ifndef EDGERNN_MAX_SRC_LEN",
        f"#define EDGERNN_MAX_SRC_LEN {spec.max_len}",
        "#endif",
        "/* model.c's static buffers: memory, keys and scores per source position, then scratch */",
        f"#define EDGERNN_SCRATCH_BYTES (4 * (EDGERNN_MAX_SRC_LEN * {sizes.per_source_floats} + "
        f"{sizes.fixed_floats}))",
        "#define EDGERNN_RAM_BYTES (EDGERNN_STATE_BYTES + EDGERNN_SCRATCH_BYTES)",
    ]


def render_source(model: Seq2SeqC, sizes: Seq2SeqLayout, arrays: list, int8: bool) -> str:
    """model.c: the weight arrays, their descriptors, the engine and the size checks."""
    del sizes  # the sizes are model.h's macros, checked below
    spec = model.spec
    lines = [*preamble(int8), *float_arrays(arrays), *_descriptors(model, int8)]
    lines += ["", float_engine("seq2seq.c")]
    lines += ["/* model.h states these sizes; a mismatch stops the build here. */"]
    lines += size_check("flash", [name for _, name, _ in arrays], "EDGERNN_FLASH_BYTES")
    lines += [
        "typedef char edgernn_check_state[sizeof(edgernn_decoder) == EDGERNN_STATE_BYTES ? 1 : -1];"
    ]
    buffers = ["seq", "keys", "scores", "final_h", "run_h", "run_x", "run_gx", "run_gh"]
    buffers += ["context", "features", "mixed", "logits", "search_state", "source_len"]
    buffers += ["final_c", "run_c"] if spec.cell == "lstm" else []
    buffers += ["attn_hidden"] if model.bahdanau else []
    lines += size_check("scratch", buffers, "EDGERNN_SCRATCH_BYTES")
    return "\n".join(lines) + "\n"


def harness_source() -> str:
    """The parity harness (stdin -> encode / decode_step / translate -> stdout)."""
    return template("seq2seq_harness.c")


def _descriptors(model: Seq2SeqC, int8: bool) -> list[str]:
    def ref_of(linear: Linear) -> str:
        return ref(linear, int8)

    bridge = ", ".join(ref_of(m) for m in model.bridge)
    lines = [
        *cell_table("edgernn_enc_cells", model.enc_cells, ref_of),
        *cell_table("edgernn_dec_cells", model.dec_cells, ref_of),
    ]
    lines += [f"static const edgernn_linear edgernn_bridge[{len(model.bridge)}] = {{{bridge}}};"]
    singles = ("src_embedding", "tgt_embedding", "attn_key", "attn_query", "attn_score")
    for name in (*singles, "combine", "out"):
        linear = getattr(model, name)
        if linear is not None:
            lines += [f"static const edgernn_linear edgernn_{name} = {ref_of(linear)};"]
    return lines
