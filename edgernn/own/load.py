"""Models edgernn did not build: a user's own pickled ``nn.Module`` and its example inputs.

A file saved with ``torch.save(model, path)`` is a pickle: loading it imports the classes it
names and runs whatever code the file asks for. edgernn loads one only when the user passes
``--trust-pickle``; an edgernn checkpoint never needs the flag (it holds tensors and built-in
types only and loads with ``weights_only=True``).

Such a module has no spec, so it cannot say what it takes: ``--example inputs.npz`` does.
Its arrays are keyed by ``forward``'s parameter names, or ``arg0``, ``arg1``, ... by position,
and fix the inputs' ranks, dtypes and valid values (token ids, lengths).

Example::

    module = load_own_module("mine.pt", trust_pickle=True)
    model = OwnModel.prepare(module, "inputs.npz", source="mine.pt")
    model.inputs          # {"x": array(...)}, in forward's order
"""

from __future__ import annotations

import inspect
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from edgernn.checkpoint import Checkpoint, load_checkpoint
from edgernn.errors import EdgeRNNError

DTYPES = ("float16", "float32", "float64", "int8", "uint8", "int32", "int64", "bool")
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def load_model(path: str | os.PathLike, trust_pickle: bool = False) -> Checkpoint | nn.Module:
    """An edgernn checkpoint (safe, never needs the flag) or, trusted, a pickled module.

    Raises:
        EdgeRNNError: as ``load_checkpoint`` (which names ``--trust-pickle`` for a pickle
            that was not trusted), or as ``load_own_module``.
    """
    if trust_pickle and _holds_code(Path(path)):
        return load_own_module(path, trust_pickle)
    return load_checkpoint(path)


def _holds_code(path: Path) -> bool:
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        return True
    except Exception:  # missing or damaged: load_checkpoint says which
        return False
    return False


def load_own_module(path: str | os.PathLike, trust_pickle: bool = False) -> nn.Module:
    """Unpickle a whole ``nn.Module`` (``torch.save(model, path)``), in eval mode on CPU.

    Args:
        path: the pickle.
        trust_pickle: must be True: unpickling runs code from the file.

    Returns:
        The module.

    Raises:
        EdgeRNNError: not trusted, missing, not importable here, or not an ``nn.Module``.
    """
    path = Path(path)
    if not trust_pickle:
        return load_checkpoint(path)  # refuses pickled code, naming --trust-pickle
    if not path.is_file():
        raise EdgeRNNError(f"{path}: no such model file")
    try:
        module = torch.load(path, map_location="cpu", weights_only=False)
    except (ImportError, AttributeError) as error:
        raise EdgeRNNError(
            f"{path}: cannot unpickle the model ({error}); the classes it was saved with must "
            "be importable here: run from the project that defines them or add it to PYTHONPATH"
        ) from None
    except Exception as error:  # a damaged pickle fails in many ways
        raise EdgeRNNError(f"{path}: corrupt or not a PyTorch file ({error})") from None
    if not isinstance(module, nn.Module):
        raise EdgeRNNError(
            f"{path}: holds a {type(module).__name__}, not an nn.Module; save the whole model "
            "with torch.save(model, path)"
        )
    return module.cpu().eval()


def read_example(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of an ``inputs.npz`` (no pickled objects), each non-empty and numeric.

    Raises:
        EdgeRNNError: unreadable, empty, or an array of a type a model cannot take.
    """
    try:
        with np.load(path, allow_pickle=False) as arrays:
            example = {name: arrays[name] for name in arrays.files}
    except (OSError, ValueError) as error:
        raise EdgeRNNError(f"--example {path}: not a readable .npz file ({error})") from None
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

    An array is keyed by the parameter's name or by ``arg{i}``. Parameters with defaults may
    be left out from the end; the result is keyed by parameter name.

    Raises:
        EdgeRNNError: a required argument is missing, given twice, or unknown to forward.
    """
    params = _positional(module)
    bound, skipped = {}, None
    for index, param in enumerate(params):
        keys = [key for key in (param.name, f"arg{index}") if key in example]
        if len(keys) > 1:
            raise EdgeRNNError(f"example gives forward's argument {param.name!r} twice: {keys}")
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
    unknown = sorted(set(example) - known)
    if unknown:
        raise EdgeRNNError(
            f"example has arrays forward does not take: {unknown}; it takes {_describe(params)}"
        )
    return bound


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


def to_tensors(arrays: dict[str, np.ndarray]) -> tuple[Tensor, ...]:
    """Copies of the arrays as tensors, in order (the example stays untouched)."""
    return tuple(torch.tensor(array) for array in arrays.values())


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
    """A trusted user module with example inputs that ``forward`` has been seen to take."""

    module: nn.Module  # eval mode, CPU
    inputs: dict[str, np.ndarray]  # forward's parameter name -> example array, in order
    source: str = ""  # the pickle it came from, for the manifest and report

    @property
    def class_name(self) -> str:
        kind = type(self.module)
        return f"{kind.__module__}.{kind.__qualname__}"

    @classmethod
    def prepare(
        cls, module: nn.Module, example: str | os.PathLike | None, source: str = ""
    ) -> OwnModel:
        """Bind ``example`` to ``module``'s forward and run it once.

        Raises:
            EdgeRNNError: no example, arrays that do not fit forward, or forward failing.
        """
        if example is None:
            raise EdgeRNNError(
                "a pickled module needs --example inputs.npz: arrays keyed by forward's "
                "argument names (or arg0, arg1, ...) that fix the input shapes and dtypes"
            )
        inputs = bind_example(module, read_example(example))
        flatten_outputs(run_forward(module, inputs))
        return cls(module, inputs, str(source))


def load_with_example(
    path: str | os.PathLike, trust_pickle: bool, example: str | os.PathLike | None
) -> Checkpoint | OwnModel:
    """What a MODEL argument is: an edgernn checkpoint, or a trusted module with its example.

    Raises:
        EdgeRNNError: as ``load_model`` and ``OwnModel.prepare``, or an example given
            for an edgernn checkpoint (which knows its own inputs).
    """
    model = load_model(path, trust_pickle)
    if not isinstance(model, Checkpoint):
        return OwnModel.prepare(model, example, source=str(path))
    if example is not None:
        raise EdgeRNNError(
            f"--example is for a pickled module (--trust-pickle); {path} is an edgernn "
            "checkpoint, which knows its own inputs: drop --example"
        )
    return model
