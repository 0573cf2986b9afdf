"""Models edgernn did not build: a user's own ``nn.Module`` and its example inputs.

``edgernn.own.source`` loads what users save (a trusted pickle, or a state dict with the
class that built it); an edgernn checkpoint never needs ``--trust-pickle`` (it holds tensors
and built-in types only and loads with ``weights_only=True``).

Such a module has no spec, so it cannot say what it takes: ``--example inputs.npz`` does.
Its arrays are keyed by ``forward``'s parameter names, or ``arg0``, ``arg1``, ... by position,
and fix the inputs' ranks, dtypes and valid values (token ids, lengths).

Example::

    model = load_with_example("state.pt", False, "inputs.npz", model_file="models.py",
                              model_class="Tagger", model_args={"hidden": 16})
    model.inputs          # {"x": array(...)}, in forward's order
    model.extras          # the checkpoint's other keys: {"word_to_idx": {...}, ...}
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from edgernn.checkpoint import Checkpoint
from edgernn.errors import EdgeRNNError
from edgernn.npz import load_npz
from edgernn.own.source import OwnSource, load_model, load_own_module

DTYPES = ("float16", "float32", "float64", "int8", "uint8", "int32", "int64", "bool")
# An example fixes shapes and dtypes for tracing: a few rows. Its arrays together may unpack to
# at most this, checked from the archive's headers before anything is allocated.
MAX_EXAMPLE_BYTES = 64 * 1024**2
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def read_example(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of an ``inputs.npz`` (no pickled objects), each non-empty and numeric.

    Raises:
        EdgeRNNError: unreadable, empty, or an array of a type a model cannot take.
    """
    try:
        example = load_npz(Path(path), required=None, limit=MAX_EXAMPLE_BYTES)
    except EdgeRNNError as error:
        raise EdgeRNNError(f"--example {error}") from None
    if not example:
        raise EdgeRNNError(f"--example {path}: holds no arrays")
    for name, array in example.items():
        if str(array.dtype) not in DTYPES:
            raise EdgeRNNError(
                f"example array {name!r} is {array.dtype}; inputs must be one of {DTYPES}"
            )
        if array.size == 0:
            raise EdgeRNNError(f"example array {name!r} is empty")
    return example


def bind_example(module: nn.Module, example: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Match example arrays to ``forward``'s positional parameters, in order.

    An array is keyed by the parameter's name or by ``arg{i}``; a tuple argument (an LSTM's
    ``hidden=(h, c)``) by ``NAME.0``, ``NAME.1``, ... Parameters with defaults may be left
    out from the end; the result is keyed by parameter name (``NAME.i`` for tuple items).

    Raises:
        EdgeRNNError: a required argument is missing, given twice, or unknown to forward.
    """
    params = _positional(module)
    bound, skipped = {}, None
    for index, param in enumerate(params):
        keys = [key for key in (param.name, f"arg{index}") if key in example]
        items = _tuple_items(example, keys or [param.name, f"arg{index}"])
        if len(keys) + bool(items) > 1:
            given = keys + [f"{param.name}.0..."] * bool(items)
            raise EdgeRNNError(f"example gives forward's argument {param.name!r} twice: {given}")
        if items:
            if skipped:
                raise EdgeRNNError(
                    f"example gives {param.name!r} but not {skipped!r} before it; positional "
                    f"arguments cannot skip one: add {skipped!r} to the example"
                )
            bound |= {f"{param.name}.{i}": example[key] for i, key in enumerate(items)}
            continue
        if not keys:
            if param.default is inspect.Parameter.empty:
                raise EdgeRNNError(
                    f"example has no array for forward's argument {param.name!r} (key "
                    f"{param.name!r} or 'arg{index}'); forward takes {_describe(params)}"
                )
            skipped = skipped or param.name
            continue
        if skipped:
            raise EdgeRNNError(
                f"example gives {param.name!r} but not {skipped!r} before it; positional "
                f"arguments cannot skip one: add {skipped!r} to the example"
            )
        bound[param.name] = example[keys[0]]
    known = {key for i, p in enumerate(params) for key in (p.name, f"arg{i}")}
    unknown = sorted(key for key in example if key.split(".")[0] not in known)
    if unknown:
        raise EdgeRNNError(
            f"example has arrays forward does not take: {unknown}; it takes {_describe(params)}"
        )
    return bound


def _tuple_items(example: dict, prefixes: list[str]) -> list[str]:
    """The keys ``PREFIX.0``, ``PREFIX.1``, ... of one tuple argument, in order."""
    for prefix in prefixes:
        items = [key for key in example if key.startswith(f"{prefix}.")]
        if not items:
            continue
        expected = [f"{prefix}.{i}" for i in range(len(items))]
        if sorted(items) != sorted(expected):
            raise EdgeRNNError(
                f"example arrays {sorted(items)}: a tuple argument's items are keyed "
                f"{prefix}.0, {prefix}.1, ... with no gaps"
            )
        return expected
    return []


def _positional(module: nn.Module) -> list[inspect.Parameter]:
    try:
        signature = inspect.signature(module.forward)
    except (TypeError, ValueError) as error:
        raise EdgeRNNError(f"cannot read forward's signature ({error})") from None
    params = list(signature.parameters.values())
    for param in params:
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            raise EdgeRNNError(
                f"forward(*{param.name}) is not supported: the exported graph needs named "
                "inputs; wrap the model in a module whose forward names each input"
            )
        if param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is param.empty:
            raise EdgeRNNError(f"forward's keyword-only argument {param.name!r} needs a default")
    return [param for param in params if param.kind in _POSITIONAL]


def _describe(params: list[inspect.Parameter]) -> str:
    return "(" + ", ".join(f"{p.name}/arg{i}" for i, p in enumerate(params)) + ")"


def to_tensors(arrays: dict[str, np.ndarray]) -> tuple[Tensor | tuple[Tensor, ...], ...]:
    """Copies of the arrays as forward's arguments, in order (the example stays untouched):
    ``NAME.0``, ``NAME.1``, ... (``bind_example``'s tuple items) as one tuple."""
    args: dict[str, list[Tensor]] = {}
    for key, array in arrays.items():
        name, dot, _ = key.partition(".")
        args.setdefault(name if dot else key, []).append(torch.tensor(array))
    return tuple(
        tuple(items) if f"{name}.0" in arrays else items[0] for name, items in args.items()
    )


def flatten_outputs(value: object, prefix: str = "output") -> list[tuple[str, Tensor]]:
    """Forward's result as ``(name, tensor)`` pairs, in the order the exporters flatten it.

    A tensor is ``output``; a tuple or list ``output_0``, ``output_1``, ...; a dict is keyed
    by its keys. Anything else is refused.
    """
    if isinstance(value, Tensor):
        return [(prefix, value)]
    if isinstance(value, (tuple, list)):
        return [
            pair for i, item in enumerate(value) for pair in flatten_outputs(item, f"{prefix}_{i}")
        ]
    if isinstance(value, dict):
        names = {key: str(key) if prefix == "output" else f"{prefix}_{key}" for key in value}
        return [pair for key, item in value.items() for pair in flatten_outputs(item, names[key])]
    raise EdgeRNNError(
        f"forward returns {type(value).__name__} at {prefix!r}; only tensors, or tuples, lists "
        "and dicts of tensors, can be exported"
    )


def ids_lists_as_tensors(value: object) -> object:
    """Lists of Python ints (decoded ids, a Viterbi path), nested to any depth, as int64
    tensors; everything else as it is."""
    if isinstance(value, (list, tuple)) and value:
        if _all_ints(value):
            try:
                return torch.tensor(value, dtype=torch.long)
            except ValueError:  # ragged: left to flatten_outputs, which names it
                pass
        return type(value)(ids_lists_as_tensors(item) for item in value)
    if isinstance(value, dict):
        return {key: ids_lists_as_tensors(item) for key, item in value.items()}
    return value


def _all_ints(value: object) -> bool:
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_all_ints(item) for item in value)
    return isinstance(value, int) and not isinstance(value, bool)


def run_forward(module: nn.Module, arrays: dict[str, np.ndarray], what: str = "the example"):
    """``module(*arrays)`` without gradients; a failure becomes one line naming the error."""
    try:
        with torch.no_grad():
            return module(*to_tensors(arrays))
    except Exception as error:  # the user's code can raise anything
        message = (str(error).strip().splitlines() or [""])[0]
        hint = ""
        if any(array.dtype == np.float64 for array in arrays.values()):
            hint = " (the example holds float64 arrays: save them as float32?)"
        shapes = ", ".join(f"{name} {list(a.shape)} {a.dtype}" for name, a in arrays.items())
        raise EdgeRNNError(
            f"forward failed on {what} ({shapes}): {type(error).__name__}: {message}{hint}"
        ) from None


@dataclass(frozen=True)
class OwnModel:
    """A user's module with example inputs that ``forward`` has been seen to take."""

    module: nn.Module  # eval mode, CPU
    inputs: dict[str, np.ndarray]  # forward's parameter name -> example array, in order
    source: str = ""  # the file it came from, for the manifest and report
    extras: dict = field(default_factory=dict)  # saved beside the weights (vocab, labels, ...)

    @property
    def class_name(self) -> str:
        kind = type(self.module)
        return f"{kind.__module__}.{kind.__qualname__}"

    @classmethod
    def prepare(
        cls,
        module: nn.Module,
        example: str | os.PathLike | None,
        source: str = "",
        extras: dict | None = None,
    ) -> OwnModel:
        """Bind ``example`` to ``module``'s forward and run it once.

        Raises:
            EdgeRNNError: no example, arrays that do not fit forward, or forward failing.
        """
        if example is None:
            raise EdgeRNNError(
                "your own model needs --example inputs.npz: arrays keyed by forward's "
                "argument names (or arg0, arg1, ...) that fix the input shapes and dtypes"
            )
        inputs = bind_example(module, read_example(example))
        # Decoded ids in lists are fine for a black-box teacher; an exporter refuses them.
        flatten_outputs(ids_lists_as_tensors(run_forward(module, inputs)))
        return cls(module, inputs, str(source), dict(extras or {}))


def load_with_example(
    path: str | os.PathLike,
    trust_pickle: bool,
    example: str | os.PathLike | None,
    model_file: str | os.PathLike | None = None,
    model_class: str | None = None,
    model_args: dict | None = None,
) -> Checkpoint | OwnModel:
    """What a MODEL argument is: an edgernn checkpoint, or the user's module with its example.

    Args:
        path, trust_pickle, model_file, model_class, model_args: as ``load_model``.
        example: ``inputs.npz`` for the user's module; refused for an edgernn checkpoint.

    Raises:
        EdgeRNNError: as ``load_model`` and ``OwnModel.prepare``, or an example given
            for an edgernn checkpoint (which knows its own inputs).
    """
    code = {"model_file": model_file, "model_class": model_class, "model_args": model_args}
    model = load_model(path, trust_pickle, **code)
    if isinstance(model, OwnSource):
        return OwnModel.prepare(model.module, example, model.source, model.extras)
    if example is not None:
        raise EdgeRNNError(
            f"--example is for your own model; {path} is an edgernn checkpoint, which knows "
            "its own inputs: drop --example"
        )
    return model


__all__ = ["OwnModel", "load_model", "load_own_module", "load_with_example"]
