"""The C layout of a model: the arrays model.c holds and the flash and RAM they take."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgernn.c.weights import CModel, Linear, quantize_rows

PER_STEP_TASKS = ("tag", "lm")  # outputs at every step; the others one per sequence
FLOAT_BYTES = 4


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
    x_size: int  # floats in the input / pooled-vector buffer
    seq_buffers: int  # whole-sequence buffers of a bidirectional run (0 streaming)

    @property
    def ram_bytes(self) -> int:
        return self.state_bytes + self.scratch_bytes


def layout(model: CModel, arrays: list[tuple[str, str, np.ndarray]]) -> Layout:
    """The sizes of ``model`` whose arrays are ``arrays`` (see ``weight_arrays``)."""
    spec, hidden = model.spec, model.spec.hidden
    x_size = max(model.features, spec.directions * hidden)
    gate_floats = 2 * model.gates * hidden
    lstm = spec.cell == "lstm"
    if spec.directions == 1:
        floats = spec.layers * hidden * (2 if lstm else 1) + streams_pool(spec) * (hidden + 1)
        state = FLOAT_BYTES * (floats + x_size + gate_floats)
        return Layout(_nbytes(arrays), state, state, x_size, 0)
    buffers = 2 if spec.layers > 1 else 1
    floats = buffers * spec.max_len * 2 * hidden + hidden * (2 if lstm else 1)
    scratch = FLOAT_BYTES * (floats + x_size + gate_floats)
    return Layout(_nbytes(arrays), 0, scratch, x_size, buffers)


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


def _nbytes(arrays: list[tuple[str, str, np.ndarray]]) -> int:
    return sum(
        values.size * (1 if ctype == "int8_t" else FLOAT_BYTES) for ctype, _, values in arrays
    )
