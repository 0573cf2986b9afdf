"""Atomic writes: all or nothing under the real name, with an ordinary file mode."""

from __future__ import annotations

import os

import pytest

from edgernn.atomic import atomic_path


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(path) as temp:
        temp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.onnx"]


def test_the_written_file_gets_the_umask_mode_not_a_private_one(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "manifest.json") as temp:
            temp.write_text("{}")
    finally:
        os.umask(previous)
    assert (tmp_path / "manifest.json").stat().st_mode & 0o777 == 0o644
