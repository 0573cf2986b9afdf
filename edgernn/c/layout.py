"""The C layout of a model: the arrays model.c holds and the flash and RAM they take."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgernn.c.weights import CModel, Linear, quantize_rows

PER_STEP_TASKS = ("tag", "lm")  # outputs at every step; the others one per sequence
FLOAT_BYTES = 4
INT16_BYTES = 2


def per_step(spec) -> bool:
    """Whether the model has outputs at every step (tag, lm)."""
    return spec.task in PER_STEP_TASKS


def streams_pool(spec) -> bool:
    """Whether a streaming state carries a running mean/max pool of the top layer."""
    return spec.directions == 1 and not per_step(spec) and spec.pooling != "last"


@dataclass(frozen=True)
class Layout:
    """The sizes of a model in C: what model.h states and ``export_c`` returns."""

    flash_bytes: int  # every static const array: weights, int8 scales, biases, scaling
    state_bytes: int  # one edgernn_state (0 for bidirectional models: no streaming)
    scratch_bytes: int  # the static buffers edgernn_run uses
    x_size: int  # values in the input / pooled-vector buffer
    seq_buffers: int  # whole-sequence buffers of a bidirectional run (0 streaming)
    value_bytes: int = FLOAT_BYTES  # one x, h or c value: float, or int16 (integer-only)
    weights: int = 0  # matrix entries (recurrent, head, embedding): what flash is per weight

    @property
    def ram_bytes(self) -> int:
        return self.state_bytes + self.scratch_bytes


def layout(model: CModel, arrays: list[tuple[str, str, np.ndarray]], integer: bool = False):
    """The sizes of ``model`` whose arrays are ``arrays`` (see ``weight_arrays``).

    ``integer``: the integer-only engine's, whose x, h and c are int16 (gate sums and pools
    stay 4 bytes, so its state struct is padded to 4).
    """
    spec, hidden = model.spec, model.spec.hidden
    value = INT16_BYTES if integer else FLOAT_BYTES
    x_size = max(model.features, spec.directions * hidden)
    wide = FLOAT_BYTES * 2 * model.gates * hidden  # gx, gh: float or int32
    states = hidden * (2 if spec.cell == "lstm" else 1)  # h (and c) of one layer
    if spec.directions == 1:
        wide += FLOAT_BYTES * streams_pool(spec) * (hidden + 1)  # pool and its step count
        state = _round4(wide + value * (spec.layers * states + x_size))
        return Layout(_nbytes(arrays), state, state, x_size, 0, value, matrix_entries(arrays))
    buffers = 2 if spec.layers > 1 else 1
    scratch = wide + value * (buffers * spec.max_len * 2 * hidden + states + x_size)
    return Layout(_nbytes(arrays), 0, scratch, x_size, buffers, value, matrix_entries(arrays))


def weight_arrays(model: CModel, int8: bool) -> list[tuple[str, str, np.ndarray]]:
    """Every array model.c holds, as ``(C type, name, values)``, in file order."""
    arrays = []
    for linear in _linears(model):
        arrays += _linear_arrays(linear, int8)
    for name, pair in (("x", model.x_norm), ("y", model.y_norm)):
        if name == "x" and model.spec.vocab_size == 0 and pair is None:
            pair = (np.zeros(model.features, np.float32), np.ones(model.features, np.float32))
        if pair is not None:
            arrays += [("float", f"edgernn_{name}_mean", pair[0])]
            arrays += [("float", f"edgernn_{name}_std", pair[1])]
    return arrays


def _linears(model: CModel) -> list[Linear]:
    found = [linear for cell in model.cells for linear in cell] + [model.head]
    return found + ([model.embedding] if model.embedding is not None else [])


def _linear_arrays(linear: Linear, int8: bool) -> list[tuple[str, str, np.ndarray]]:
    if int8:
        q, scale = quantize_rows(linear.weight)
        arrays = [("int8_t", f"{linear.name}_w", q), ("float", f"{linear.name}_scale", scale)]
    else:
        arrays = [("weight", f"{linear.name}_w", linear.weight)]
    if linear.bias is not None:
        arrays.append(("float", f"{linear.name}_b", linear.bias))
    return arrays


def matrix_entries(arrays: list[tuple[str, str, np.ndarray]]) -> int:
    """The weight matrices' entries; biases, scales and scaling excluded."""
    return sum(values.size for _, name, values in arrays if name.endswith("_w"))


def _nbytes(arrays: list[tuple[str, str, np.ndarray]]) -> int:
    return sum(values.size * values.dtype.itemsize for _, _, values in arrays)


def _round4(size: int) -> int:
    return -(-size // 4) * 4
