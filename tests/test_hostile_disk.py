"""A full disk or a full stdout: one line and exit 1, no traceback, the previous output intact.

The disk is a real 2 MiB tmpfs, filled nearly full (needs root and ``mount``); stdout is
``/dev/full``. The commands run as real processes, as a user runs them.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _sentence

from edgernn.checkpoint import load_checkpoint
from edgernn.runtime import Runtime

CLI = [sys.executable, "-c", "from edgernn.cli import main; main()"]
TINY = ["--task", "classify", "--hidden", "8", "--embed", "8", "--epochs", "1", "--quiet"]


def _edgernn(*args, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], stdout=stdout, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """A tiny checkpoint, its data and its bundle, on the ordinary disk."""
    root = tmp_path_factory.mktemp("made")
    rng = random.Random(0)
    rows = ["text,label"] + ['"{}",{}'.format(*_sentence(rng)) for _ in range(60)]
    (root / "reviews.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    made = {"data": root / "reviews.csv", "checkpoint": root / "model.pt", "bundle": root / "b"}
    trained = _edgernn("train", *TINY, "--data", made["data"], "-o", made["checkpoint"])
    assert trained.returncode == 0, trained.stderr
    exported = _edgernn("export", made["checkpoint"], "-o", made["bundle"], "--no-eval")
    assert exported.returncode == 0, exported.stderr
    return made


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 2 MiB tmpfs under tmp_path, unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def _fill(disk: Path, leave: int = 4096) -> None:
    """Leave ``leave`` bytes free: far less than a checkpoint or an ONNX graph needs."""
    stats = os.statvfs(disk)
    with open(disk / "filler", "wb") as out:
        out.write(b"\0" * (stats.f_bavail * stats.f_frsize - leave))
    assert os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize <= leave


def _digests(folder: Path) -> dict[str, str]:
    """Every name under ``folder``, hidden ones too, with its file's sha256."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        if path.is_file()
        else "folder"
        for path in sorted(folder.rglob("*"))
    }


def _assert_one_disk_full_line(result: subprocess.CompletedProcess, what: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert what in lines[0] and "no space left on device" in lines[0]
    assert "free some space" in lines[0]


def test_train_into_a_full_disk_keeps_the_previous_checkpoint(small_disk, made):
    previous = small_disk / "model.pt"
    shutil.copy(made["checkpoint"], previous)
    _fill(small_disk)
    before = _digests(small_disk)
    result = _edgernn("train", *TINY, "--data", made["data"], "-o", previous)
    _assert_one_disk_full_line(result, str(previous))
    assert _digests(small_disk) == before  # no temporary file left, the old one byte for byte
    assert load_checkpoint(previous).spec.hidden == 8


def test_export_into_a_full_disk_keeps_the_previous_bundle(small_disk, made):
    bundle = small_disk / "bundle"
    shutil.copytree(made["bundle"], bundle)
    _fill(small_disk)
    before = _digests(small_disk)
    result = _edgernn("export", made["checkpoint"], "-o", bundle, "--no-eval")
    _assert_one_disk_full_line(result, str(bundle))
    assert _digests(small_disk) == before  # no .staging-* folder, no temporary file
    assert Runtime(bundle).predict(["good film"])[0]["label"] in {"pos", "neg"}


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["--version"], ["predict", "BUNDLE", "good film", "--json"]])
def test_a_full_stdout_is_one_line_and_exit_1(made, args):
    args = [made["bundle"] if arg == "BUNDLE" else arg for arg in args]
    with open("/dev/full", "w") as full:
        result = _edgernn(*args, stdout=full)
    _assert_one_disk_full_line(result, "cannot write to standard output")
