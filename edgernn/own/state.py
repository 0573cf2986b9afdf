"""A user's forward that takes and returns recurrent state: which output feeds which input.

``forward(x, hidden)`` returning ``(y, hidden)`` streams when each state input is paired with
the output holding the next state: an app feeds that output back as the input on its next
call. An LSTM's ``(h, c)`` is a tuple argument, given in the example as ``hidden.0`` and
``hidden.1`` (``edgernn.own.load.bind_example``).

The pairing is read from the example: a float input after the first whose shape and dtype an
output has, taken in order. Its batch axis is the middle one of three
(PyTorch's ``(layers * directions, batch, hidden)``, batch-first or not) or the first of two
(a cell's ``(batch, hidden)``); the export keeps that axis dynamic and the others fixed.
``stream_gap`` then checks that the pairs really carry the state: the sequence in two chunks,
the state fed back, ends in the state the whole sequence ends in.
"""

from __future__ import annotations

import numpy as np

from edgernn.own.load import OwnModel, flatten_outputs, run_forward

BATCH_AXIS = {3: 1, 2: 0}  # state rank -> its batch axis


def state_pairs(model: OwnModel) -> list[tuple[str, str]]:
    """``(input, output)`` name pairs: each state input and the output holding its next value."""
    first, *rest = model.inputs
    outputs = flatten_outputs(run_forward(model.module, model.inputs))
    pairs, used = [], set()
    for name in rest:
        array = model.inputs[name]
        if array.dtype.kind != "f" or array.ndim not in BATCH_AXIS:
            continue
        for output, tensor in outputs:
            same = tuple(tensor.shape) == array.shape and str(tensor.dtype)[6:] == array.dtype.name
            if output not in used and same:
                pairs.append((name, output))
                used.add(output)
                break
    return pairs


def state_axes(model: OwnModel, pairs: list[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """``--axes`` roles of the state inputs: their batch axis dynamic, the rest fixed."""
    roles = {}
    for name, _ in pairs:
        rank = model.inputs[name].ndim
        roles[name] = tuple("batch" if axis == BATCH_AXIS[rank] else "-" for axis in range(rank))
    return roles


def state_entries(model: OwnModel, pairs: list[tuple[str, str]], dynamic: dict) -> list[dict]:
    """The manifest's ``states`` of the graph: input, output and shape (``batch`` named)."""
    entries = []
    for name, output in pairs:
        shape = list(model.inputs[name].shape)
        for axis in dynamic.get(name, {}):
            shape[axis] = "batch"
        entries.append({"input": name, "output": output, "shape": shape})
    return entries


def stream_gap(session, model: OwnModel, pairs: list[tuple[str, str]], dynamic: dict):
    """Max abs difference between the state after the whole sequence and after two chunks
    with the state fed back; None when the example cannot be cut in two (no time axis, under
    two steps, or an input other than the states and lengths).

    Lengths (a 1-D integer input, one per row) are each chunk's length for every row.
    """
    first, *rest = model.inputs
    time = [axis for axis, symbol in dynamic.get(first, {}).items() if symbol == "time"]
    states = {name for name, _ in pairs}
    x = model.inputs[first]
    lengths = [name for name in rest if name not in states and _is_lengths(model.inputs[name])]
    if not time or x.shape[time[0]] < 2 or set(rest) - states - set(lengths):
        return None
    names = [value.name for value in session.get_outputs()]

    def run(chunk: np.ndarray, state: dict) -> dict:
        steps = {name: np.full_like(model.inputs[name], chunk.shape[time[0]]) for name in lengths}
        feeds = {first: chunk} | steps | state
        return dict(zip(names, session.run(None, feeds), strict=True))

    start = {name: model.inputs[name] for name in states}
    whole = run(x, start)
    head, tail = np.array_split(x, 2, axis=time[0])
    after_head = run(np.ascontiguousarray(head), start)
    carried = {name: after_head[output] for name, output in pairs}
    after_tail = run(np.ascontiguousarray(tail), carried)
    gaps = [np.abs(after_tail[output] - whole[output]).max() for _, output in pairs]
    return float(max(gaps))


def _is_lengths(array: np.ndarray) -> bool:
    return array.ndim == 1 and array.dtype.kind in "iu"
