"""What the C target's test modules share: a scratch folder per module, and the compiler skip."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from edgernn.c.harness import find_compiler


def module_scratch(prefix: str):
    """``(root, fixture)``: a temp folder and the autouse fixture that removes it after the
    module; assign both at module level (``_ROOT, _cleanup = module_scratch(...)``)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))

    @pytest.fixture(scope="module", autouse=True)
    def cleanup():
        yield
        shutil.rmtree(root, ignore_errors=True)

    return root, cleanup


def needs_compiler() -> None:
    """Skip the calling test where the host has no C compiler."""
    if find_compiler() is None:
        pytest.skip("no C compiler (cc) on PATH")
