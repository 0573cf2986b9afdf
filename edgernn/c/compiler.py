"""The host's C compiler, found without importing torch (``bench`` builds C in its workers)."""

from __future__ import annotations

import shutil


def find_compiler() -> str | None:
    """The C compiler on PATH (``cc``, else ``gcc`` or ``clang``), or None."""
    return next((found for name in ("cc", "gcc", "clang") if (found := shutil.which(name))), None)
