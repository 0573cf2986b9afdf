"""Which axes of a foreign module's inputs are batch and time, and resized example copies.

A module edgernn did not build has no spec, so its example decides, by this rule: an input
of rank >= 2 is ``(batch, time, ...)`` with both axes dynamic; a rank-1 input as long as the
batch (lengths, say) is ``(batch,)``; every other axis stays fixed at the example's size. An
input whose time axis differs in length from the first one's gets its own symbol
(``NAME_time``). ``--axes NAME=ROLE,...`` overrides the rule for one input, e.g.
``h0=-,batch,-`` for an initial state shaped ``(layers, batch, hidden)``.

Resized copies cut or repeat the example's rows and steps (cycling them), so every value in
them is one the user chose: token ids stay valid and lengths stay within the sequence.
"""

from __future__ import annotations

import numpy as np

from edgernn.errors import EdgeRNNError

ROLES = ("batch", "time", "-")  # "-": fixed at the example's size


def parse_axes(specs: tuple[str, ...] | list[str]) -> dict[str, tuple[str, ...]]:
    """``("h0=-,batch,-",)`` -> ``{"h0": ("-", "batch", "-")}``.

    Raises:
        EdgeRNNError: not ``NAME=ROLE,ROLE,...`` with roles batch, time or ``-``.
    """
    axes = {}
    for spec in specs:
        name, _, roles = spec.partition("=")
        parsed = tuple(role.strip() for role in roles.split(",")) if roles else ()
        if not name.strip() or not parsed or any(role not in ROLES for role in parsed):
            raise EdgeRNNError(
                f"--axes {spec!r}: expected NAME=ROLE,ROLE,... with one role per axis, each "
                "batch, time or - (fixed), e.g. h0=-,batch,-"
            )
        axes[name.strip()] = parsed
    return axes


def dynamic_axes(
    inputs: dict[str, np.ndarray], axes: dict[str, tuple[str, ...]] | None = None
) -> dict[str, dict[int, str]]:
    """Input name -> axis -> symbolic dim name, by the rule in the module docstring.

    Raises:
        EdgeRNNError: ``axes`` names an unknown input or has the wrong rank, or two inputs'
            batch axes differ in size.

    Example::

        dynamic_axes({"x": np.zeros((3, 5, 2)), "lengths": np.array([5, 2, 1])})
        # {"x": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}
    """
    axes = axes or {}
    unknown = sorted(set(axes) - set(inputs))
    if unknown:
        raise EdgeRNNError(f"--axes names inputs forward does not take: {unknown}")
    ranked = [a.shape[0] for name, a in inputs.items() if a.ndim >= 2 and name not in axes]
    batch = ranked[0] if ranked else None
    roles = {}
    for name, array in inputs.items():
        if name in axes:
            if len(axes[name]) != array.ndim:
                raise EdgeRNNError(
                    f"--axes {name}: gives {len(axes[name])} roles but the example array has "
                    f"{array.ndim} axes {list(array.shape)}"
                )
            roles[name] = axes[name]
        elif array.ndim >= 2:
            roles[name] = ("batch", "time") + ("-",) * (array.ndim - 2)
        elif array.ndim == 1 and array.shape[0] == batch:
            roles[name] = ("batch",)
        else:
            roles[name] = ("-",) * array.ndim
    return _symbols(inputs, roles)


def _symbols(inputs: dict, roles: dict) -> dict[str, dict[int, str]]:
    sizes: dict[str, int] = {}
    dynamic = {}
    for name, array in inputs.items():
        dims = {}
        for axis, role in enumerate(roles[name]):
            if role == "-":
                continue
            size = array.shape[axis]
            if sizes.setdefault(role, size) == size:
                dims[axis] = role
            elif role == "batch":
                raise EdgeRNNError(
                    f"input {name!r} has {size} rows on its batch axis {axis} but another input "
                    f"has {sizes[role]}; fix that axis with --axes {name}=... (- for fixed)"
                )
            else:
                dims[axis] = f"{name}_{role}"
        dynamic[name] = dims
    return dynamic


def symbol_sizes(arrays: dict[str, np.ndarray], dynamic: dict) -> dict[str, int]:
    """Symbol -> its size in ``arrays``."""
    return {s: arrays[n].shape[a] for n, dims in dynamic.items() for a, s in dims.items()}


def resized(
    inputs: dict[str, np.ndarray], dynamic: dict, sizes: dict[str, int]
) -> dict[str, np.ndarray]:
    """The arrays with each symbolic axis cut or repeated (cycling its rows/steps) to size.

    Args:
        inputs: the example.
        dynamic: from ``dynamic_axes``.
        sizes: symbol -> new size; symbols not named keep their size.
    """
    out = {}
    for name, array in inputs.items():
        for axis, symbol in dynamic[name].items():
            if symbol in sizes:
                array = np.take(array, np.arange(sizes[symbol]) % array.shape[axis], axis=axis)
        out[name] = np.ascontiguousarray(array)
    return out


def variants(inputs: dict, dynamic: dict) -> tuple[dict, list[dict]]:
    """The arrays to trace with, and those to check parity on (the example first).

    Traced: one more row and step than the example (so no dynamic axis is 1, which the
    exporters would bake in). Checked: the example, its first row alone, and rows and steps
    repeated to 2n+1 and 2n+3 (so batch and time sizes differ from each other).
    """
    sizes = symbol_sizes(inputs, dynamic)
    traced = resized(inputs, dynamic, {s: n + 1 for s, n in sizes.items()})
    first_row = resized(inputs, dynamic, {"batch": 1})
    grown = {s: 2 * n + (1 if s == "batch" else 3) for s, n in sizes.items()}
    checks, seen = [], set()
    for arrays in (inputs, first_row, resized(inputs, dynamic, grown)):
        shapes = tuple(a.shape for a in arrays.values())
        if shapes not in seen:
            seen.add(shapes)
            checks.append(arrays)
    return traced, checks
