"""The integer-only C target: a ``CModel`` as fixed-point arrays and the engine that runs them.

No floating point at run time, for cores without an FPU. Weights are the int8 rows of the
int8 target (``quantize_rows``); each row's float scale becomes an int32 mantissa and a right
shift (``y = acc * m >> shift``, rounded), as TFLite and CMSIS-NN requantize. Activations are
int16 Q12 (x, h, c), sums int32, gates Q15, sigmoid/tanh one interpolated table
(``templates/fixed.c`` states its error; ``templates/driver.c`` steps and runs it, as it
does the float engine). Numeric inputs are int32 with ``FixedFormat.input_frac_bits``
fraction bits, outputs int32 Q12.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgernn.c.codegen import c_array, checked, descriptors, templates
from edgernn.c.layout import Layout
from edgernn.c.weights import CModel, Linear, quantize_rows
from edgernn.errors import EdgeRNNError

Q = 12  # fraction bits of activations and outputs: int16 Q12 spans [-8, 8)
INT16_PEAK = 1 << 15  # the largest |value| an int16 activation takes
INT32_MAX = (1 << 31) - 1
WIDE_MAX = 1 << 30  # biases and folded means: pre-activations stay within +-2^30
MAX_INPUT_FRAC = 16  # numeric inputs: at most Q16 (1/65536 resolution)
NORMALIZED_RANGE = 8  # Q12's reach: normalized features beyond +-8 saturate anyway
TANH_STEPS = 32  # table entries per unit of x, over [0, 8]


@dataclass(frozen=True)
class FixedFormat:
    """The Q formats model.h states for the app: what goes in and what comes out."""

    input_frac_bits: int  # numeric frames: raw feature * 2^bits, as int32 (0 for tokens)
    output_frac_bits: int = Q  # outputs: value * 2^bits, as int32


def check_integer_supported(spec) -> None:
    """Refuse, in one line, a model the integer-only engine does not run."""
    if spec.task == "seq2seq":
        raise EdgeRNNError(
            "the integer-only C target does not support seq2seq models; drop --integer-only"
        )


def fixed_format(model: CModel) -> FixedFormat:
    """The input format that holds every feature's mean +- 8 std (what normalization keeps)."""
    if model.x_norm is None:
        return FixedFormat(0)
    mean, std = (np.asarray(a, np.float64) for a in model.x_norm)
    reach = float(np.max(np.abs(mean) + NORMALIZED_RANGE * std))
    bits = MAX_INPUT_FRAC if reach <= 0 else min(MAX_INPUT_FRAC, 30 - math.ceil(math.log2(reach)))
    if bits < 0:
        raise EdgeRNNError(
            f"integer-only C: the input features reach {reach:.3g}, beyond int32; "
            "export without --integer-only"
        )
    return FixedFormat(bits)


def multiplier(scale: float, what: str) -> tuple[int, int]:
    """``scale ~= m / 2^shift`` with ``m`` in [2^30, 2^31) and ``shift`` in [1, 62]."""
    if not math.isfinite(scale):
        raise EdgeRNNError(f"integer-only C: {what} has a scale of {scale}; check its data")
    if scale <= 0:
        return 0, 1
    fraction, exponent = math.frexp(scale)
    mantissa, shift = round(fraction * (1 << 31)), 31 - exponent
    if mantissa == 1 << 31:
        mantissa, shift = mantissa // 2, shift - 1
    if shift > 62:  # below 2^-31: keeps what resolution is left
        mantissa, shift = mantissa >> (shift - 62), 62
    if shift < 1:
        raise EdgeRNNError(f"integer-only C: {what} scales by {scale:.3g}, beyond int32")
    return mantissa, shift


def fixed_arrays(model: CModel, form: FixedFormat) -> list[tuple[str, str, np.ndarray]]:
    """Every array the integer-only model.c holds, as ``(C type, name, values)``.

    Raises:
        EdgeRNNError: a row whose worst-case int32 sum could overflow, or a scale, bias or
            mean beyond the fixed-point formats.
    """
    arrays = []
    for linear in [layer for cell in model.cells for layer in cell] + [model.head]:
        arrays += _linear_arrays(linear, 1.0)
    if model.embedding is not None:  # int8 rows straight to Q12 activations
        arrays += _linear_arrays(model.embedding, float(1 << Q))
    if model.spec.vocab_size == 0:
        mean, std = model.x_norm or (np.zeros(model.features), np.ones(model.features))
        arrays += [("int32_t", "edgernn_x_mean", _wide(mean * 2.0**form.input_frac_bits, "x"))]
        scales = [2.0 ** (Q - form.input_frac_bits) / s for s in np.asarray(std, np.float64)]
        arrays += _scales("edgernn_x", scales, "input normalization")
    if model.y_norm is not None:
        mean, std = model.y_norm
        arrays += [("int32_t", "edgernn_y_mean", _wide(mean * 2.0**Q, "the target mean"))]
        arrays += _scales("edgernn_y", list(np.asarray(std, np.float64)), "de-normalization")
    return arrays + [("int16_t", "edgernn_tanh", tanh_table())]


def tanh_table() -> np.ndarray:
    """tanh(i / 32) for i = 0..256, Q15 (1.0 kept as 32767)."""
    values = np.rint(np.tanh(np.arange(8 * TANH_STEPS + 1) / TANH_STEPS) * INT16_PEAK)
    return np.minimum(values, INT16_PEAK - 1).astype(np.int16)


def render_fixed_source(model: CModel, sizes: Layout, arrays: list) -> str:
    """model.c of the integer-only engine: its arrays, descriptors, size checks and engine."""
    lines = [
        "/* model.c: weights in flash (static const) and the integer-only engine; see model.h.",
        " * No floating point: fixed-point arithmetic on int8/int16/int32 (and int64 products).",
        " */",
        '#include "model.h"',
        "",
        "/* y = W x (+ bias): int8 rows, each scaled by multiplier / 2^shift; bias in Q12. */",
        "typedef struct {",
        "    const int8_t *weight;",
        "    const int32_t *multiplier;",
        "    const int8_t *shift;",
        "    const int32_t *bias;",
        "    int32_t rows;",
        "    int32_t cols;",
        "} edgernn_linear;",
        "",
    ]
    for ctype, name, values in arrays:
        lines += c_array(ctype, name, values)
    lines += descriptors(model, _ref)
    lines += checked(model, arrays, templates("fixed.c", "driver.c"))
    return "\n".join(lines) + "\n"


def _linear_arrays(linear: Linear, gain: float) -> list[tuple[str, str, np.ndarray]]:
    q, scale = quantize_rows(linear.weight)
    if linear.name != "embedding":
        # int8 weights times int16 inputs: the worst case of each row must fit an int32 sum.
        worst = int(np.abs(q.astype(np.int64)).sum(axis=1).max()) * INT16_PEAK
        if worst > INT32_MAX:
            raise EdgeRNNError(
                f"integer-only C: a row of {linear.name} ({q.shape[1]} inputs) can sum to "
                f"{worst:.3g}, beyond int32; export without --integer-only or use fewer inputs"
            )
    arrays = [("int8_t", f"{linear.name}_w", q)]
    arrays += _scales(linear.name, [float(s) * gain for s in scale], linear.name)
    if linear.bias is not None:
        arrays.append(("int32_t", f"{linear.name}_b", _wide(linear.bias * 2.0**Q, linear.name)))
    return arrays


def _scales(name: str, scales: list[float], what: str) -> list[tuple[str, str, np.ndarray]]:
    pairs = [multiplier(s, what) for s in scales]
    mantissas = np.array([m for m, _ in pairs], np.int32)
    shifts = np.array([s for _, s in pairs], np.int8)
    return [("int32_t", f"{name}_m", mantissas), ("int8_t", f"{name}_s", shifts)]


def _wide(values: np.ndarray, what: str) -> np.ndarray:
    values = np.rint(np.asarray(values, np.float64))
    if values.size and float(np.abs(values).max()) >= WIDE_MAX:
        raise EdgeRNNError(
            f"integer-only C: {what} is too large for Q{Q} in int32; export without --integer-only"
        )
    return values.astype(np.int32)


def _ref(linear: Linear) -> str:
    bias = f"{linear.name}_b" if linear.bias is not None else "NULL"
    rows, cols = linear.weight.shape
    return f"{{{linear.name}_w, {linear.name}_m, {linear.name}_s, {bias}, {rows}, {cols}}}"
