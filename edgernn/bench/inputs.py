"""Inputs for ONNX graphs at each grid point: from ``--example`` arrays or from the graph alone.

numpy only (the ONNX Runtime worker imports it). An input is described as
``{"name", "dtype", "shape"}`` with numpy dtype names and dims that are ints (fixed) or
strings/None (symbolic). Each symbolic dim must be the batch or the sequence axis:

- by name: ``batch``, ``n``, ``b`` -> batch; ``time``, ``seq``, ``len``, ``step``, ``t`` -> seq;
- otherwise by position within its input: the first unnamed dim is batch, the next seq.

Anything else (a symbolic feature width, a string input) needs ``--example inputs.npz``.
Values: floats standard normal, booleans True (masks), integer vectors named like ``*len*``
the full sequence length, other integers small token ids in [1, 4) (every edgernn vocabulary
has them; ids 0-3 are reserved symbols).

An ONNX file edgernn did not make, given ``--example``, is timed *as given* (``AsGiven``):
a streaming model's 512-sample chunk, its state and its ``sr`` scalar keep the example's
shapes, and only the axes ``--axes NAME=ROLE,...`` marks ``batch`` or ``time`` follow the grid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from edgernn.errors import EdgeRNNError

BATCH, SEQ = "batch", "seq"
_BATCH_NAME = re.compile(r"batch|^(n|b|bs)$", re.IGNORECASE)
_SEQ_NAME = re.compile(r"time|seq|len|step|^(t|s|l)$", re.IGNORECASE)
_LENGTHS_NAME = re.compile(r"len", re.IGNORECASE)
_ORT_TYPES = {"float": "float32", "double": "float64"}
SUPPORTED = ("float16", "float32", "float64", "int8", "uint8", "int32", "int64", "bool")


def ort_dtype(type_string: str) -> str:
    """``tensor(float)`` (ONNX Runtime's spelling) -> ``float32`` (numpy's)."""
    inner = type_string.removeprefix("tensor(").removesuffix(")")
    return _ORT_TYPES.get(inner, inner)


def _named_role(dim: object) -> str | None:
    if not isinstance(dim, str):
        return None
    if _BATCH_NAME.search(dim):
        return BATCH
    return SEQ if _SEQ_NAME.search(dim) else None


def assign_axes(inputs: list[dict], example_names: frozenset = frozenset()) -> dict:
    """Map every dim of every input to an int (fixed), ``batch``, ``seq`` or ``keep``.

    ``keep`` (an unmappable symbolic dim) is allowed only for inputs given by the example,
    whose array then fixes that dim.

    Raises:
        EdgeRNNError: an input's type or dims cannot be derived and no example gives it.
    """
    axes = {}
    for spec in inputs:
        name, given = spec["name"], spec["name"] in example_names
        if spec["dtype"] not in SUPPORTED and not given:
            raise EdgeRNNError(
                f"ONNX input {name!r} has type {spec['dtype']}, which bench cannot make up; "
                "pass --example inputs.npz with an array for it"
            )
        roles = [d if isinstance(d, int) and d > 0 else _named_role(d) for d in spec["shape"]]
        for i, role in enumerate(roles):
            if role is None:
                free = [r for r in (BATCH, SEQ) if r not in roles]
                if free:
                    roles[i] = free[0]
                elif given:
                    roles[i] = "keep"
                else:
                    raise EdgeRNNError(
                        f"ONNX input {name!r} has shape {spec['shape']}: dim {i} is symbolic "
                        "but neither its batch nor its sequence axis; pass --example inputs.npz "
                        "with an array for it"
                    )
        axes[name] = roles
    return axes


def grid_uses(axes: dict) -> tuple[bool, bool]:
    """Whether any input has a batch axis, and whether any has a sequence axis."""
    roles = [r for dims in axes.values() for r in dims]
    return BATCH in roles, SEQ in roles


def make_feeds(
    inputs: list[dict],
    axes: dict,
    point: tuple[int | None, int | None],
    rng: np.random.Generator,
    example: dict | None = None,
) -> dict[str, np.ndarray]:
    """Arrays for one grid point ``(batch, seq_len)``; example arrays are tiled or cut to fit."""
    sizes = {BATCH: point[0], SEQ: point[1]}
    feeds = {}
    for spec in inputs:
        name, roles = spec["name"], axes[spec["name"]]
        if example is not None and name in example:
            array = _fit_example(name, example[name], spec["dtype"], roles, sizes)
        else:
            shape = tuple(sizes.get(r, r) for r in roles)
            array = _invent(spec["dtype"], shape, rng)
        if _is_lengths(spec) and roles == [BATCH] and sizes[SEQ] is not None:
            # The grid's length is what is measured: every row runs the whole sequence.
            array = np.full(array.shape, sizes[SEQ], dtype=array.dtype)
        feeds[name] = array
    return feeds


def _is_lengths(spec: dict) -> bool:
    return "int" in spec["dtype"] and bool(_LENGTHS_NAME.search(spec["name"]))


def _invent(dtype: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if dtype == "bool":
        return np.ones(shape, dtype=bool)
    if dtype.startswith("float"):
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(1, 4, size=shape).astype(dtype)


def _fit_example(name: str, array: np.ndarray, dtype: str, roles: list, sizes: dict):
    if str(array.dtype) != dtype:
        raise EdgeRNNError(
            f"example array {name!r} is {array.dtype} but the model takes {dtype}; save it as "
            f"{dtype}"
        )
    if array.size == 0:
        raise EdgeRNNError(f"example array {name!r} is empty")
    if array.ndim != len(roles):
        raise EdgeRNNError(
            f"example array {name!r} has {array.ndim} dims but the model input has {len(roles)}"
        )
    for axis, role in enumerate(roles):
        if isinstance(role, int) and array.shape[axis] != role:
            raise EdgeRNNError(
                f"example array {name!r} has size {array.shape[axis]} on axis {axis}; the model "
                f"fixes it to {role}"
            )
        if role in sizes and sizes[role] is not None:
            # Repeat (or cut) along the axis so the example's values fill any grid size.
            index = np.arange(sizes[role]) % array.shape[axis]
            array = np.take(array, index, axis=axis)
    return np.require(array, requirements="C")  # ascontiguousarray would make a scalar 1-d


def check_example(inputs: list[dict], example: dict) -> None:
    """Refuse example arrays the model does not take (a typo would silently be ignored)."""
    unknown = sorted(set(example) - {spec["name"] for spec in inputs})
    if unknown:
        names = ", ".join(spec["name"] for spec in inputs)
        raise EdgeRNNError(
            f"example has arrays the model does not take: {unknown}; it takes {names}"
        )


# --axes roles (the syntax of edgernn.export.axes) -> the grid axis each one follows.
_AXES_ROLES = {"batch": BATCH, "time": SEQ}


@dataclass(frozen=True)
class AsGiven:
    """How to time an ONNX file at its example's shapes.

    ``roles`` is ``assign_axes``'s map with every example dim fixed at the example's size
    but those ``--axes`` marks batch or time; inputs the example lacks keep the graph's roles,
    made at the example's own batch and length (``given``) unless the grid varies them.
    """

    roles: dict
    given: dict  # BATCH / SEQ -> the example's size, None where nothing in it has that axis
    varies: tuple[bool, bool]  # whether --axes marks some batch axis, some time axis

    def feed_point(self, point: tuple[int | None, int | None]) -> tuple[int, int | None]:
        """The grid point ``(batch, seq)`` with an axis the grid does not vary as given."""
        batch, seq = point
        return (
            self.given[BATCH] if batch is None else batch,
            self.given[SEQ] if seq is None else seq,
        )


def as_given(inputs: list[dict], shapes: dict[str, tuple], axes: dict) -> AsGiven:
    """The ``AsGiven`` plan for graph ``inputs``, example array ``shapes`` and ``--axes``.

    Raises:
        EdgeRNNError: ``axes`` names an input the model or the example lacks, has the wrong
            rank, or varies a dim the model fixes; an input the example lacks has an axis
            nothing gives a size to.
    """
    _check_example_fits_graph(inputs, shapes)
    _check_axes(inputs, shapes, axes)
    graph_roles = assign_axes(inputs, frozenset(shapes))
    roles = {}
    for spec in inputs:
        name = spec["name"]
        if name in shapes:
            marked = axes.get(name, ("-",) * len(shapes[name]))
            roles[name] = [
                _AXES_ROLES.get(r, size) for r, size in zip(marked, shapes[name], strict=True)
            ]
        else:
            roles[name] = graph_roles[name]
    plan = AsGiven(roles, _given_sizes(roles, graph_roles, shapes), grid_uses(_marked(axes)))
    _check_missing_sizes(inputs, shapes, plan)
    return plan


def _marked(axes: dict) -> dict:
    return {name: [_AXES_ROLES.get(r, r) for r in roles] for name, roles in axes.items()}


def _check_example_fits_graph(inputs: list[dict], shapes: dict[str, tuple]) -> None:
    # Timed as given, the example's shapes are the roles: check them against the graph here.
    for spec in inputs:
        name, dims = spec["name"], spec["shape"]
        if name not in shapes or not dims:  # no dims: a scalar, or a graph without shapes
            continue
        if len(shapes[name]) != len(dims):
            raise EdgeRNNError(
                f"example array {name!r} has {len(shapes[name])} dims but the model input has "
                f"{len(dims)}"
            )
        for axis, (size, dim) in enumerate(zip(shapes[name], dims, strict=True)):
            if isinstance(dim, int) and dim > 0 and size != dim:
                raise EdgeRNNError(
                    f"example array {name!r} has size {size} on axis {axis}; the model fixes "
                    f"it to {dim}"
                )


def _check_axes(inputs: list[dict], shapes: dict[str, tuple], axes: dict) -> None:
    graph = {spec["name"]: spec["shape"] for spec in inputs}
    unknown = sorted(set(axes) - set(graph))
    if unknown:
        raise EdgeRNNError(
            f"--axes names inputs the model does not take: {unknown}; it takes {', '.join(graph)}"
        )
    for name, roles in axes.items():
        if name not in shapes:
            raise EdgeRNNError(f"--axes {name}: --example has no array for it; add one")
        if len(roles) != len(shapes[name]):
            raise EdgeRNNError(
                f"--axes {name}: gives {len(roles)} roles but the example array has "
                f"{len(shapes[name])} axes {list(shapes[name])}"
            )
        for axis, (role, dim) in enumerate(zip(roles, graph[name], strict=False)):
            if role != "-" and isinstance(dim, int) and dim > 0:
                raise EdgeRNNError(
                    f"--axes {name}: axis {axis} is fixed to {dim} by the model, so it cannot "
                    "vary; mark it -"
                )


def _given_sizes(roles: dict, graph_roles: dict, shapes: dict[str, tuple]) -> dict:
    # --axes says best which axis is the batch; the graph's own dims say it otherwise.
    given = {BATCH: None, SEQ: None}
    for source in (roles, graph_roles):
        for name, dims in source.items():
            for axis, role in enumerate(dims):
                if name in shapes and role in given and given[role] is None:
                    given[role] = shapes[name][axis]
    if given[BATCH] is None:
        given[BATCH] = 1  # nothing batched: one stream, as a device runs it
    return given


def _check_missing_sizes(inputs: list[dict], shapes: dict, plan: AsGiven) -> None:
    if plan.given[SEQ] is not None or plan.varies[1]:
        return
    for spec in inputs:
        if spec["name"] not in shapes and SEQ in plan.roles[spec["name"]]:
            raise EdgeRNNError(
                f"ONNX input {spec['name']!r} (shape {spec['shape']}) is not in --example and "
                "nothing there gives its sequence length; add an array for it"
            )
