"""README.md for the app developer who builds the generated C into firmware."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgernn.c.layout import Layout, per_step
from edgernn.c.weights import CModel

if TYPE_CHECKING:
    from edgernn.c.fixed import FixedFormat

_OUTPUTS = {
    "classify": "one logit per class (no softmax: the largest is the prediction)",
    "regress": "the predicted targets, in the data's own units (de-normalized)",
    "tag": "one logit per tag at every step",
    "lm": "next-token logits at every step (sampling is up to you)",
}


def render_readme(
    model: CModel,
    sizes: Layout,
    int8: bool,
    labels: list[str] | None,
    fixed: FixedFormat | None = None,
) -> str:
    """The README: what goes in, what comes out, the sizes and how to build it."""
    spec = model.spec
    if spec.vocab_size:
        frame = "one `int32_t` token id (the index in `meta.json`'s `vocab`; 1 is `<unk>`)"
    elif fixed:
        bits = fixed.input_frac_bits
        frame = (
            f"{spec.input_size} raw features as `int32_t` in Q{bits}: `round(feature * 2^{bits})`"
            " (`EDGERNN_INPUT_FRAC_BITS`; model.c normalizes them as in training)"
        )
    else:
        frame = f"{spec.input_size} raw `float` features (model.c normalizes them as in training)"
    kind = "int8 weights, integer-only" if fixed else f"{'int8' if int8 else 'fp32'} weights"
    lines = [
        f"# {spec.task} model in C ({kind})",
        "",
        f"{spec.cell.upper()}, {spec.layers} layer(s) x {spec.hidden} units, "
        f"{'bidirectional' if spec.bidirectional else 'unidirectional'}. Written by "
        "`edgernn export --target c`; regenerate it rather than edit it.",
        "",
        *build_section(fixed is not None),
        "",
        *sizes_table(
            sizes,
            "flash (weights, scales, biases, scaling)",
            "one `edgernn_state`",
            "static buffers of `edgernn_run`",
        ),
        "",
        "Code and the small descriptor tables come on top. model.c checks at compile time that",
        "these macros are the sizes the compiler lays out.",
        "",
        "## Input and output",
        "",
        f"A frame (one time step) is {frame}: `EDGERNN_INPUT_SIZE` values of type",
        f"`edgernn_input`. The output is `EDGERNN_OUTPUT_SIZE` {_output_type(fixed)}: "
        + _OUTPUTS[spec.task]
        + ".",
        *_labels(labels),
        "",
        "`edgernn_run` and `edgernn_step` return `EDGERNN_OK` (0), `EDGERNN_ERR_LENGTH` or",
        "`EDGERNN_ERR_TOKEN`.",
        "",
        *_usage(model),
        "## Precision",
        "",
        _precision(int8) if fixed is None else _integer_precision(),
        "",
        "`meta.json` holds the data description of the checkpoint (vocabulary, labels, text",
        "rules, normalization), as edgernn recorded it.",
        "",
    ]
    return "\n".join(lines)


def sizes_table(sizes, flash: str, state: str, scratch: str) -> list[str]:
    """The README's "Sizes" table: ``sizes``' bytes (a ``Layout`` or ``Seq2SeqLayout``), each
    row labelled as given, with the model.h macro that states it."""
    rows = [
        (flash, sizes.flash_bytes, "FLASH"),
        (state, sizes.state_bytes, "STATE"),
        (scratch, sizes.scratch_bytes, "SCRATCH"),
        ("RAM in all", sizes.ram_bytes, "RAM"),
    ]
    lines = ["## Sizes", "", "| | bytes | macro |", "|---|---:|---|"]
    return lines + [f"| {label} | {n:,} | `EDGERNN_{macro}_BYTES` |" for label, n, macro in rows]


def build_section(integer: bool) -> list[str]:
    """The README's lines on what model.c needs and how to compile it."""
    if integer:
        return [
            "C99 with no dependencies and no floating point: no malloc, no libc, no `math.h`;",
            "int8/int16/int32 arithmetic (and int64 products), for cores without an FPU.",
            "Weights are `static const` (flash on a microcontroller). Build it with your firmware:",
            "",
            "```sh",
            "cc -std=c99 -O2 -c model.c",
            "```",
        ]
    return [
        "C99 with no dependencies: no malloc, nothing from libc but `math.h` (`expf`).",
        "Weights are `static const` (flash on a microcontroller). Build it with your firmware:",
        "",
        "```sh",
        "cc -std=c99 -O2 -c model.c      # link with -lm where libm is separate",
        "cc -std=c99 -O3 -march=native -c model.c   # a host with AVX2 + FMA: their kernels",
        "```",
    ]


def _output_type(fixed: FixedFormat | None) -> str:
    if fixed is None:
        return "floats"
    bits = fixed.output_frac_bits
    return (
        f"`int32_t` values in Q{bits} (value = output / 2^{bits}, `EDGERNN_OUTPUT_SCALE`; "
        "logits compare as they are, so argmax needs no conversion)"
    )


def _integer_precision() -> str:
    return (
        "Integer-only: the weight matrices (and the embedding table) are int8 rows, "
        "symmetric per row (`max|row| / 127`); each row's scale is an int32 multiplier and a "
        "right shift (`y = sum * m >> shift`, rounded), as TFLite and CMSIS-NN requantize. "
        "Activations are fixed point: inputs, hidden and cell state int16 Q12 (range +-8, "
        "step 1/4096, saturating), products summed in int32 (edgernn checked at export that "
        "no row can overflow), gate pre-activations int32 Q12, gates Q15. sigmoid and tanh "
        "come from one 257-entry table of tanh, linearly interpolated (within 1.2e-4). "
        "Biases, the input normalization and the output de-normalization are integers too. "
        "edgernn compares the outputs with PyTorch running the same int8 weights, within 1 % "
        "of the largest output plus 2^-10 (`edgernn.c.verify.INTEGER_TOLERANCE`), checks "
        "that streaming steps equal the whole-sequence run exactly, and reports the distance "
        "to the fp32 model beside it."
    )


def _labels(labels: list[str] | None) -> list[str]:
    if not labels:
        return []
    shown = ", ".join(f"{i} `{name}`" for i, name in enumerate(labels[:50]))
    more = f" and {len(labels) - 50} more (meta.json)" if len(labels) > 50 else ""
    return ["", f"Output index -> label: {shown}{more}."]


def _usage(model: CModel) -> list[str]:
    spec = model.spec
    steps = per_step(spec)
    run = [
        "```c",
        '#include "model.h"',
        "",
        f"edgernn_output out[{'LENGTH * ' if steps else ''}EDGERNN_OUTPUT_SIZE];",
        "int rc = edgernn_run(frames, length, out);   /* frames: length * EDGERNN_INPUT_SIZE */",
        "```",
        "",
    ]
    if spec.directions == 2:
        return [
            "A bidirectional model needs the whole sequence, so there is `edgernn_run` only. Its",
            "buffers hold `EDGERNN_MAX_LEN` steps; compile every file with",
            "`-DEDGERNN_MAX_LEN=N` to take shorter sequences in less RAM. It is not reentrant.",
            "",
            *run,
        ]
    so_far = "this step's outputs" if steps else "the outputs for the sequence so far"
    return [
        "Streaming: keep one `edgernn_state` per stream and feed it a frame at a time; each",
        f"`edgernn_step` writes {so_far}. `edgernn_run` does the same over a whole sequence",
        "(with its own static state, so it is not reentrant).",
        "",
        "```c",
        '#include "model.h"',
        "",
        "static edgernn_state state;",
        "edgernn_output out[EDGERNN_OUTPUT_SIZE];",
        "edgernn_init(&state);",
        "while (next_frame(frame)) {",
        "    if (edgernn_step(&state, frame, out) != EDGERNN_OK) { /* bad frame */ }",
        "}",
        "edgernn_reset(&state);   /* before the next sequence */",
        "```",
        "",
        *run,
    ]


def _precision(int8: bool) -> str:
    if not int8:
        return "fp32: every weight is a float; the outputs match PyTorch to float rounding."
    return (
        "int8, weight-only: every weight matrix (and the embedding table) is stored as int8 "
        "rows, each with one float scale (symmetric, `max|row| / 127`); activations stay float. "
        "A row's products are summed in float and scaled once, so the code computes exactly the "
        "model with those int8 weights (edgernn checks it to float rounding); the matrices take "
        "a quarter of their fp32 flash (plus 4 bytes of scale per row). Biases and the scaling "
        "stay float. On a core with an FPU (Cortex-M4F and up) "
        "this is as fast as fp32 and more accurate than fixed-point activations; without "
        "one, export with `--integer-only`."
    )
