"""What users actually save, loaded as a module: a whole pickled ``nn.Module``, a state dict,
or a checkpoint dict holding one (with a vocabulary, labels or a config beside it).

- ``torch.save(model, path)`` is a pickle: loading it runs code named in the file, so edgernn
  does it only with ``trust_pickle`` (``--trust-pickle``). Its classes are imported as usual,
  with the pickle's folder and the current directory on ``sys.path``; classes of a training
  script (pickled as ``__main__.Net``) come from ``model_file``, imported without running the
  script's ``__main__`` block (``edgernn.own.modelfile``).
- ``torch.save(model.state_dict(), path)``, or ``{"state_dict": ..., "config": ...}``, loads with
  ``weights_only=True`` (no flag: no code runs from the ``.pt``); ``model_class`` from
  ``model_file`` builds the module (``edgernn.own.build``), the TorchServe convention.
- An edgernn checkpoint is returned as a ``Checkpoint`` and never needs the flag.

Example::

    own = load_model("state.pt", model_file="models.py", model_class="Tagger")
    own.module, own.extras["word_to_idx"]
"""

from __future__ import annotations

import functools
import os
import pickle
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from edgernn.checkpoint import Checkpoint, load_checkpoint
from edgernn.errors import EdgeRNNError
from edgernn.own.build import ModelCode, build_module
from edgernn.own.modelfile import import_model_file, module_classes, search_path, unpickler_module

# Keys of a checkpoint dict that hold the weights (or, pickled, the whole module), in order
STATE_KEYS = (
    "state_dict",
    "model_state_dict",
    "model_state",
    "model",
    "net",
    "network",
    "module",
    "weights",
)
_Lazy = Callable[[], types.ModuleType]  # the model file, imported on first call
_GLOBAL = re.compile(r"GLOBAL ([\w.]+) was not an allowed global")


@dataclass(frozen=True)
class OwnSource:
    """A user's module as loaded, with what was saved beside it."""

    module: nn.Module  # eval mode, CPU, weights loaded
    source: str  # the file it came from, for the manifest and report
    extras: dict = field(default_factory=dict)  # the checkpoint's other keys (vocab, labels, ...)
    kind: str = "module"  # "module": a pickled nn.Module; "state_dict": built from model_class
    model_args: dict = field(default_factory=dict)  # the arguments model_class was called with


def load_model(
    path: str | os.PathLike,
    trust_pickle: bool = False,
    *,
    model_file: str | os.PathLike | None = None,
    model_class: str | None = None,
    model_args: dict | None = None,
) -> Checkpoint | OwnSource:
    """An edgernn checkpoint, or a user's own model: a pickled module or a state dict.

    Args:
        path: the ``.pt`` file.
        trust_pickle: allow unpickling code (a whole module, a dict holding objects).
        model_file: the ``.py`` defining the model's classes (imported, ``__main__`` block
            not run).
        model_class: the ``nn.Module`` class in ``model_file`` that builds a state dict.
        model_args: its keyword arguments, over the checkpoint's own config (``config``, ...).

    Returns:
        A ``Checkpoint``, or an ``OwnSource`` with the module and the dict's other keys.

    Raises:
        EdgeRNNError: one line saying what to do next: a pickle not trusted, a state dict
            without its class, a class or arguments that do not fit, a missing file.
    """
    code = ModelCode(None if model_file is None else str(model_file), model_class, model_args)
    path = Path(path)
    if not path.is_file():
        raise EdgeRNNError(f"{path}: no such checkpoint or model file")
    # imported at most once, and only when needed: its top-level code runs
    user_code = functools.cache(lambda: import_model_file(code.file))
    payload = _read(path, trust_pickle, code, user_code)
    if isinstance(payload, Mapping) and str(payload.get("format", "")).startswith("edgernn."):
        if code.file is not None:
            raise EdgeRNNError(
                f"{path} is an edgernn checkpoint, which builds its own model: drop "
                "--model-file, --model-class and --model-args"
            )
        return load_checkpoint(path)  # checks the format and version
    return _own_source(payload, path, code, user_code)


def load_own_module(
    path: str | os.PathLike,
    trust_pickle: bool = False,
    *,
    model_file: str | os.PathLike | None = None,
    model_class: str | None = None,
    model_args: dict | None = None,
) -> nn.Module:
    """The module of ``load_model`` (same arguments), refusing edgernn checkpoints."""
    code = {"model_file": model_file, "model_class": model_class, "model_args": model_args}
    own = load_model(path, trust_pickle, **code)
    if isinstance(own, Checkpoint):
        raise EdgeRNNError(f"{path} is an edgernn checkpoint, not your own model")
    return own.module


def _read(path: Path, trust_pickle: bool, code: ModelCode, user_code: _Lazy) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not trust_pickle:
            raise EdgeRNNError(_refusal(path, error)) from None
    except Exception as error:  # a damaged file fails in many ways deep inside torch.load
        raise EdgeRNNError(f"{path}: corrupt or not a PyTorch file ({error})") from None
    aliases = {}
    if code.file is not None:  # a script's classes were pickled as __main__.Name
        aliases = dict.fromkeys(("__main__", Path(code.file).stem), user_code())
    with search_path(path.resolve().parent, Path.cwd()):
        try:
            return torch.load(
                path,
                map_location="cpu",
                weights_only=False,
                pickle_module=unpickler_module(aliases, str(path)),
            )
        except EdgeRNNError:
            raise
        except ModuleNotFoundError as error:
            raise EdgeRNNError(
                f"{path}: unpickling it needs module {error.name!r}, which is not importable "
                "here: run from the folder that holds it, add that folder to PYTHONPATH, or "
                f"give the file: --model-file {error.name.replace('.', '/')}.py"
            ) from None
        except (ImportError, AttributeError) as error:
            raise EdgeRNNError(
                f"{path}: cannot unpickle the model ({error}); the classes it was saved with "
                "must be importable here, or in --model-file"
            ) from None
        except Exception as error:
            raise EdgeRNNError(f"{path}: corrupt or not a PyTorch file ({error})") from None


def _refusal(path: Path, error: Exception) -> str:
    named = _GLOBAL.search(str(error))
    names = f" (it names {named.group(1)})" if named else ""
    return (
        f"{path}: holds pickled code{names}, not only tensors; loading it runs that code. If you "
        "trust the file: --trust-pickle --example inputs.npz (and --model-file train.py, the "
        "script that defined its classes, if they are not importable); or save "
        "model.state_dict() and give --model-file models.py --model-class NAME"
    )


def _own_source(payload: object, path: Path, code: ModelCode, user_code: _Lazy) -> OwnSource:
    if isinstance(payload, nn.Module):
        return _whole(payload, path, code, {})
    if not isinstance(payload, Mapping):
        raise EdgeRNNError(
            f"{path}: holds a {type(payload).__name__}, not an nn.Module, a state dict or a "
            "checkpoint dict; save the whole model with torch.save(model, path) or its "
            "weights with torch.save(model.state_dict(), path)"
        )
    key, weights = _find_weights(payload, path)
    extras = {} if key is None else {k: v for k, v in payload.items() if k != key}
    if isinstance(weights, nn.Module):
        return _whole(weights, path, code, extras)
    if code.class_name is None:
        raise EdgeRNNError(_needs_class(path, key, weights, code, user_code))
    module, args = build_module(user_code(), code, weights, extras, str(path))
    return OwnSource(module, str(path), extras, "state_dict", args)


def _whole(module: nn.Module, path: Path, code: ModelCode, extras: dict) -> OwnSource:
    if code.class_name is not None:
        raise EdgeRNNError(
            f"{path} holds a whole nn.Module ({type(module).__name__}), not a state dict: drop "
            "--model-class and --model-args"
        )
    return OwnSource(module.cpu().eval(), str(path), extras)


def _is_state_dict(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in value.items())
    )


def _find_weights(payload: Mapping, path: Path) -> tuple[str | None, Mapping | nn.Module]:
    """(key, state dict or module); key None when the whole payload is the state dict."""
    if _is_state_dict(payload):
        return None, payload
    for key in STATE_KEYS:
        value = payload.get(key)
        if isinstance(value, nn.Module) or _is_state_dict(value):
            return key, value
    keys = [str(key) for key in payload][:8]
    raise EdgeRNNError(
        f"{path}: holds a dict with keys {keys} but no weights: a state dict (every value a "
        f"tensor) is looked for as the whole dict or under one of {list(STATE_KEYS)}; save it "
        """as {"state_dict": model.state_dict(), ...}"""
    )


def _needs_class(
    path: Path, key: str | None, weights: Mapping, code: ModelCode, user_code: _Lazy
) -> str:
    where = "a state dict" if key is None else f"a checkpoint dict with a state dict in {key!r}"
    first = next(iter(weights))
    give = "--model-file models.py --model-class NAME [--model-args JSON]"
    if code.file is not None:
        names = module_classes(user_code())
        defines = f"{Path(code.file).name} defines {', '.join(names) or 'no nn.Module class'}"
        give = f"--model-class NAME [--model-args JSON] ({defines})"
    return (
        f"{path}: holds {where} ({len(weights)} tensors, e.g. {first!r}); give the class that "
        f"built it: {give}"
    )
