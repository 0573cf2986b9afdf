"""Lazy package exports (PEP 562): a name is imported from its module on first use.

The CLI and the torch-free runtime import package ``__init__`` files; resolving exports
lazily keeps torch (and every other heavy module) out of a process that never uses them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], list]:
    """``(__getattr__, __all__)`` for ``package``, whose names live in ``exports[name]``.

    Example::

        __getattr__, __all__ = lazy_exports(__name__, {"prune": "edgernn.prune.stage"})
    """

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__, sorted(exports)
