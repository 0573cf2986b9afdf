"""A user's module built for a state dict: ``--model-class`` from ``--model-file``, called with
``--model-args`` on top of the checkpoint's own config, its weights loaded strictly.

This is TorchServe's convention (a model file plus serialized weights): the ``.pt`` holds only
tensors and plain values and loads with ``weights_only=True``; the code that runs is the user's
own model file.

Example::

    code = ModelCode("models.py", "Tagger", {"hidden": 16})
    module, args = build_module(import_model_file(code.file), code, weights, extras, "w.pt")
"""

from __future__ import annotations

import argparse
import inspect
import json
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor, nn

from edgernn.errors import EdgeRNNError
from edgernn.own.modelfile import module_classes

# Checkpoint keys that hold constructor arguments, most specific first (Lightning's
# "hyper_parameters", argparse's "args"); only the arguments __init__ takes are used.
ARGS_KEYS = (
    "model_args",
    "model_kwargs",
    "model_config",
    "init_args",
    "config",
    "hparams",
    "hyper_parameters",
    "args",
    "kwargs",
)
# What nn.DataParallel / DistributedDataParallel and torch.compile put before every key
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_SHOWN = 3  # keys named in a mismatch message


@dataclass(frozen=True)
class ModelCode:
    """Where a user's model comes from: ``--model-file``, ``--model-class``, ``--model-args``."""

    file: str | None = None  # the .py defining the classes (a script's __main__ ones too)
    class_name: str | None = None  # builds the module a state dict came from
    args: dict | None = None  # keyword arguments for class_name, over the checkpoint's config

    def __post_init__(self):
        if self.class_name is not None and self.file is None:
            raise EdgeRNNError(
                f"--model-class {self.class_name} needs --model-file: the .py that defines it"
            )
        if self.args is not None and self.class_name is None:
            raise EdgeRNNError(
                "--model-args needs --model-class: they are the arguments of the class that "
                "builds a module for a state dict"
            )
        if self.args is not None and not isinstance(self.args, dict):
            raise EdgeRNNError(f"--model-args must be a JSON object, got {self.args!r}")


def parse_model_args(text: str | None) -> dict | None:
    """``--model-args``: a JSON object of keyword arguments, or None when not given.

    Raises:
        EdgeRNNError: not JSON, or JSON that is not an object.
    """
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise EdgeRNNError(
            f"--model-args: not valid JSON ({error.msg} at column {error.colno}); give an object "
            """such as '{"hidden": 64}'"""
        ) from None
    if not isinstance(value, dict):
        raise EdgeRNNError(
            f"--model-args must be a JSON object of keyword arguments, such as "
            f"""'{{"hidden": 64}}', not {type(value).__name__}"""
        )
    return value


def build_module(
    user_code: types.ModuleType,
    code: ModelCode,
    weights: Mapping[str, Tensor],
    extras: Mapping,
    source: str,
) -> tuple[nn.Module, dict]:
    """``code.class_name(**args)`` with ``weights`` loaded strictly, in eval mode on CPU.

    Args:
        user_code: the imported ``code.file``.
        code: the class and the ``--model-args``.
        weights: the state dict.
        extras: the checkpoint's other keys; the first of ``ARGS_KEYS`` found there gives
            constructor arguments, which ``code.args`` override.
        source: the weights file, for messages.

    Returns:
        The module and the arguments it was built with.

    Raises:
        EdgeRNNError: no such class, arguments ``__init__`` cannot take (or lacks), or weights
            that do not fit (missing or unexpected keys, other shapes).
    """
    cls = _find_class(user_code, code)
    args, origin = constructor_args(cls, extras, code.args)
    module = _construct(cls, args, origin)
    what = f"{cls.__name__}({_show(args)}), built with {origin},"
    _load_weights(module, dict(weights), what, source)
    return module.cpu().eval(), args


def _find_class(user_code: types.ModuleType, code: ModelCode) -> type[nn.Module]:
    value = getattr(user_code, code.class_name, None)
    if inspect.isclass(value) and issubclass(value, nn.Module):
        return value
    names = module_classes(user_code)
    defines = f"defines {', '.join(names)}: give one" if names else "defines no nn.Module class"
    raise EdgeRNNError(
        f"--model-class {code.class_name}: not an nn.Module class in {Path(code.file).name}, "
        f"which {defines}"
    )


def constructor_args(cls: type, extras: Mapping, given: dict | None) -> tuple[dict, str]:
    """Keyword arguments for ``cls``: the checkpoint's config, then ``given`` over it.

    Returns:
        The arguments and where they came from, in words, for messages.
    """
    found, origins = {}, []
    for key in ARGS_KEYS:
        value = extras.get(key)
        if isinstance(value, argparse.Namespace):
            value = vars(value)
        if isinstance(value, Mapping) and value and all(isinstance(k, str) for k in value):
            found, origins = dict(value), [f"the checkpoint's {key!r}"]
            break
    params = _parameters(cls)
    if params is not None and not _takes_any_keyword(params):
        # a training config holds more than the model takes (lr, epochs, ...)
        found = {key: value for key, value in found.items() if key in params}
    if given is not None:
        origins.append("--model-args")
    return found | (given or {}), " and ".join(origins) or "no arguments"


def _parameters(cls: type) -> dict[str, inspect.Parameter] | None:
    try:
        return dict(inspect.signature(cls).parameters)
    except (TypeError, ValueError):  # a signature Python cannot read: let the call decide
        return None


def _takes_any_keyword(params: dict[str, inspect.Parameter]) -> bool:
    return any(param.kind is inspect.Parameter.VAR_KEYWORD for param in params.values())


def _construct(cls: type[nn.Module], args: dict, origin: str) -> nn.Module:
    params = _parameters(cls)
    if params is not None:
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        missing = [
            name
            for name, param in params.items()
            if param.kind in named and param.default is param.empty and name not in args
        ]
        if missing:
            wanted = ", ".join(f'"{name}": ...' for name in missing)
            raise EdgeRNNError(
                f"--model-class {cls.__name__}: __init__ needs {', '.join(missing)}, which "
                f"{origin} does not give; add them: --model-args '{{{wanted}}}'"
            )
        unknown = [name for name in args if name not in params]
        if unknown and not _takes_any_keyword(params):
            raise EdgeRNNError(
                f"--model-args: {cls.__name__}.__init__ takes no {', '.join(map(repr, unknown))}; "
                f"it takes ({', '.join(params)})"
            )
    try:
        return cls(**args)
    except Exception as error:  # the user's code can raise anything
        message = (str(error).strip().splitlines() or [""])[0]
        raise EdgeRNNError(
            f"--model-class {cls.__name__}: {cls.__name__}({_show(args)}) raised "
            f"{type(error).__name__}: {message}; check --model-args"
        ) from None


def _load_weights(module: nn.Module, weights: dict[str, Tensor], what: str, source: str) -> None:
    expected = module.state_dict()
    weights = _unwrapped(weights, expected)
    missing = [key for key in expected if key not in weights]
    unexpected = [key for key in weights if key not in expected]
    shapes = [
        key
        for key in expected
        if key in weights and tuple(weights[key].shape) != tuple(expected[key].shape)
    ]
    problems = [f"missing {_few(missing)}"] if missing else []
    problems += [f"unexpected {_few(unexpected)}"] if unexpected else []
    if shapes:
        key, more = shapes[0], f" (+{len(shapes) - 1} more)" if len(shapes) > 1 else ""
        problems.append(
            f"{key!r} is {list(weights[key].shape)} in the file but "
            f"{list(expected[key].shape)} in the model{more}"
        )
    if problems:
        raise EdgeRNNError(
            f"{source}: {what} does not match the weights: {'; '.join(problems)}; give the "
            "--model-class and --model-args that built the model the weights were saved from"
        )
    try:
        module.load_state_dict(weights, strict=True)
    except Exception as error:  # e.g. a custom _load_from_state_dict
        message = (str(error).strip().splitlines() or [""])[0]
        raise EdgeRNNError(f"{source}: loading the weights into {what} failed: {message}") from None


def _unwrapped(weights: dict[str, Tensor], expected: Mapping) -> dict[str, Tensor]:
    for prefix in WRAPPER_PREFIXES:
        if all(key.startswith(prefix) for key in weights) and not any(
            key.startswith(prefix) for key in expected
        ):
            return {key.removeprefix(prefix): value for key, value in weights.items()}
    return weights


def _few(keys: list[str]) -> str:
    shown = ", ".join(repr(key) for key in keys[:_SHOWN])
    return shown + (f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else "")


def _show(args: dict) -> str:
    text = ", ".join(f"{key}={value!r}" for key, value in args.items())
    return text if len(text) <= 80 else text[:77] + "..."
