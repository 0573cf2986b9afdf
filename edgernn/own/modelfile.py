"""A user's model file (``--model-file train.py``): imported as a module, never run as a script.

``python train.py`` runs the file with ``__name__ == "__main__"``. edgernn imports it under the
name ``edgernn_model_file`` instead, so its top-level code (imports, class definitions and any
other top-level statement) runs, but the ``if __name__ == "__main__":`` block, where training
scripts train, does not. A model pickled from that script names its classes ``__main__.Net``;
the unpickler here reads those names from the imported file.

Global state is touched only while a file is imported or unpickled, and restored afterwards:
``sys.path`` (the file's folder, as ``python train.py`` would have it), ``sys.argv`` (the file
alone, so a top-level ``argparse`` sees no edgernn flags) and ``sys.modules[MODULE_NAME]``
(``dataclasses`` and ``typing`` look a class's module up there while it is being defined).

Example::

    module = import_model_file("train.py")    # train.py's __main__ block does not run
    with search_path("."):
        model = torch.load("model.pt", weights_only=False,
                           pickle_module=unpickler_module({"__main__": module}))
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import pickle
import sys
import traceback
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from torch import nn

from edgernn.errors import EdgeRNNError

MODULE_NAME = "edgernn_model_file"  # the model file's __name__: anything but "__main__"
MAIN_GUARD = 'if __name__ == "__main__":'
IMPORT_RULE = f"its top-level code runs at import, only its `{MAIN_GUARD}` block does not"


@contextmanager
def search_path(*folders: str | os.PathLike) -> Iterator[None]:
    """``folders`` in front of ``sys.path`` for the block; ``sys.path`` restored afterwards."""
    saved = list(sys.path)
    sys.path[:0] = [str(folder) for folder in folders]
    try:
        yield
    finally:
        sys.path[:] = saved


@contextmanager
def _as_imported(path: Path, module: types.ModuleType) -> Iterator[None]:
    saved_argv, saved_module = list(sys.argv), sys.modules.get(MODULE_NAME)
    sys.argv[:] = [str(path)]
    sys.modules[MODULE_NAME] = module
    try:
        with search_path(path.parent):
            yield
    finally:
        sys.argv[:] = saved_argv
        if saved_module is None:
            sys.modules.pop(MODULE_NAME, None)
        else:
            sys.modules[MODULE_NAME] = saved_module


def import_model_file(path: str | os.PathLike) -> types.ModuleType:
    """Import a ``.py`` file as the module ``edgernn_model_file``, its ``__main__`` block unrun.

    Args:
        path: the file that defines the model's classes (a training script, ``models.py``).

    Returns:
        The module, not left in ``sys.modules``.

    Raises:
        EdgeRNNError: no such ``.py`` file, or its top-level code raised or exited (one line
            with the error and its line number).
    """
    path = Path(path).resolve()
    if not path.is_file() or path.suffix != ".py":
        raise EdgeRNNError(f"--model-file {path}: no such .py file")
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    module = importlib.util.module_from_spec(spec)
    with _as_imported(path, module):
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as error:  # the user's code can raise anything
            raise EdgeRNNError(_import_failure(path, error)) from None
    return module


def _import_failure(path: Path, error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    here = [frame.lineno for frame in frames if Path(frame.filename) == path]
    where = f" at line {here[-1]}" if here else ""
    message = (str(error).strip().splitlines() or [""])[0]
    verb = "exited" if isinstance(error, SystemExit) else "raised"
    return (
        f"--model-file {path.name}: importing it {verb} {type(error).__name__}: {message}{where}; "
        f"{IMPORT_RULE}: move training and argument parsing under that block"
    )


def module_classes(module: types.ModuleType) -> list[str]:
    """Names of the ``nn.Module`` classes a model file defines itself (not the ones it imports)."""
    return [
        name
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, nn.Module)
        and value.__module__ == module.__name__
    ]


def unpickler_module(aliases: Mapping[str, types.ModuleType], source: str = "") -> types.ModuleType:
    """A ``pickle_module`` for ``torch.load`` that finds pickled class names in ``aliases``.

    A name under a module in ``aliases`` (``__main__``, the model file's own name) is read from
    that module (a name it lacks under any module but ``__main__`` imports as usual); any other
    ``__main__`` name is refused with what to give instead (the edgernn process's own
    ``__main__`` is never searched); the rest imports as usual.

    Args:
        aliases: pickled module name -> the module to read its names from.
        source: the pickle, for messages.
    """

    class Unpickler(pickle.Unpickler):
        def find_class(self, module_name: str, name: str):
            if module_name in aliases:
                found = _attribute(aliases[module_name], name)
                if found is not None:
                    return found
                if module_name == "__main__":
                    raise EdgeRNNError(
                        f"--model-file {Path(aliases[module_name].__file__).name} defines no "
                        f"{name!r}, which {source} needs (pickled as __main__.{name}); give the "
                        "script that defined it"
                    )
            elif module_name == "__main__":
                raise EdgeRNNError(
                    f"{source}: its class {name!r} was defined in the script that saved it "
                    f"(__main__.{name}); give that script: --model-file train.py ({IMPORT_RULE})"
                )
            return super().find_class(module_name, name)

    module = types.ModuleType("edgernn_unpickler")
    module.Unpickler = Unpickler
    # torch.load's legacy (pre-zip) format calls pickle_module.load directly
    module.load = lambda file, **kwargs: Unpickler(file, **kwargs).load()
    return module


def _attribute(module: types.ModuleType, name: str) -> object | None:
    value = module
    for part in name.split("."):  # a nested class pickles as "Outer.Inner"
        value = getattr(value, part, None)
    return value
