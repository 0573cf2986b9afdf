"""README.md of a seq2seq C export, for the app developer who builds it into firmware."""

from __future__ import annotations

from edgernn.c.readme import build_section, sizes_table
from edgernn.c.seq2seq_codegen import Seq2SeqLayout
from edgernn.c.seq2seq_weights import Seq2SeqC


def render_readme(model: Seq2SeqC, sizes: Seq2SeqLayout, int8: bool) -> str:
    """The README: the API, the sizes, how to decode and how to build it."""
    spec = model.spec
    lines = [
        f"# seq2seq model in C ({'int8' if int8 else 'fp32'} weights)",
        "",
        f"{spec.cell.upper()} encoder-decoder with {spec.attention} attention, {spec.layers} "
        f"layer(s) x {spec.hidden} units, {'bi' if spec.bidirectional else 'uni'}directional "
        "encoder. Written by `edgernn export --target c`; regenerate it rather than edit it.",
        "",
        *build_section(integer=False),
        "",
        *sizes_table(
            sizes,
            "flash (weights, scales, biases)",
            "one `edgernn_decoder`",
            "static buffers (source memory, scratch)",
        ),
        "",
        f"The source memory holds `EDGERNN_MAX_SRC_LEN` ({spec.max_len}) ids, "
        f"{4 * sizes.per_source_floats} bytes each; compile every file with",
        "`-DEDGERNN_MAX_SRC_LEN=N` to take shorter sources in less RAM. A longer source is",
        "refused with `EDGERNN_ERR_LENGTH`, never written past the buffers. model.c checks at",
        "compile time that these macros are the sizes the compiler lays out.",
        "",
        "## Input and output",
        "",
        "Ids are indices in `meta.json`'s vocabularies: the source in `vocab`, the output in",
        "`tgt_vocab` (0 `<pad>`, 1 `<unk>`, 2 `<bos>` = `EDGERNN_BOS_ID`, 3 `<eos>` =",
        "`EDGERNN_EOS_ID`); `meta.json`'s `tokens` and `text` say how edgernn cut text into",
        "them.",
        "",
        "```c",
        '#include "model.h"',
        "",
        "int32_t out[64];",
        "int32_t n = edgernn_translate(src, src_len, out, 64);   /* greedy; n ids, or < 0 */",
        "```",
        "",
        "`edgernn_translate` decodes greedily as edgernn does: from `<bos>`, the highest logit",
        "each step, until `<eos>` (not written), `max_out` ids, or `2 * src_len +",
        "EDGERNN_DECODE_MARGIN` steps. For your own search (beam, sampling, constraints), encode",
        "once and step the decoder; an `edgernn_decoder` is plain data, copy it to branch:",
        "",
        "```c",
        "edgernn_decoder state;",
        "float logits[EDGERNN_TGT_VOCAB];",
        "int32_t token = EDGERNN_BOS_ID;",
        "if (edgernn_encode(src, src_len, &state) != EDGERNN_OK) { /* bad source */ }",
        "while (edgernn_decode_step(&state, token, logits) == EDGERNN_OK) {",
        "    token = pick(logits);   /* yours */",
        "    if (token == EDGERNN_EOS_ID) break;",
        "}",
        "```",
        "",
        "Return codes: `EDGERNN_OK` (0), `EDGERNN_ERR_LENGTH` (a source of length < 1 or",
        "> `EDGERNN_MAX_SRC_LEN`, or `max_out` < 0), `EDGERNN_ERR_TOKEN` (an id outside its",
        "vocabulary), `EDGERNN_ERR_NO_SOURCE` (a decoder step before any source was encoded).",
        "The source memory and scratch are static: one source at a time, not reentrant.",
        "",
        "## Precision",
        "",
        _precision(int8),
        "",
    ]
    return "\n".join(lines)


def _precision(int8: bool) -> str:
    if not int8:
        return "fp32: every weight is a float; the logits match PyTorch to float rounding."
    return (
        "int8, weight-only: every matrix (both embeddings, the recurrent, bridge, attention and "
        "output layers) is stored as int8 rows, each with one float scale (symmetric, "
        "`max|row| / 127`); activations stay float. A row's products are summed in float and "
        "scaled once, so the code computes exactly the model with those int8 weights (edgernn "
        "checks the logits to float rounding and the greedy ids for equality); the matrices "
        "take a quarter of their fp32 flash. Biases stay float. It needs an FPU."
    )
