"""Replace a bundle all at once: build it in a hidden folder, then publish it.

An export or compress into a folder that already holds a bundle builds the new one in
``FOLDER/.staging-*`` and only swaps it in when every file is written. Killed before that
(SIGINT, SIGKILL, a failure), the previous bundle is left exactly as it was. The swap itself
takes the manifest out first and puts the new one in last, so even a crash inside the swap
leaves a folder the runtime refuses (no manifest), never one that looks valid.
Torch-free (stdlib only). Callers hold ``edgernn.lock.folder_lock`` on the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edgernn.bundle.manifest import MANIFEST
from edgernn.errors import EdgeRNNError

STAGING_PREFIX = ".staging-"


@contextlib.contextmanager
def staged_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty hidden folder inside ``folder``; publish its files there on success.

    Example::

        with folder_lock(out), staged_folder(out) as staging:
            export_bundle(checkpoint, staging)
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise EdgeRNNError(f"{folder}: exists and is not a directory")
    folder.mkdir(parents=True, exist_ok=True)
    remove_leftovers(folder)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=STAGING_PREFIX))
    try:
        yield staging
        publish(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_leftovers(folder: Path) -> None:
    """Delete staging folders that a killed run left behind (safe under the folder lock)."""
    for leftover in folder.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)


def publish(staging: Path, folder: Path) -> None:
    """Move every file of ``staging`` into ``folder``: manifest out first, back in last."""
    old_files = _manifest_files(folder)
    (folder / MANIFEST).unlink(missing_ok=True)
    new = sorted(path for path in staging.iterdir() if path.is_file())
    for path in new:
        if path.name != MANIFEST:
            os.replace(path, folder / path.name)
    # Graphs the old bundle had and the new one lacks (a step graph, say) would only mislead.
    for name in old_files - {path.name for path in new}:
        (folder / name).unlink(missing_ok=True)
    if (staging / MANIFEST).is_file():
        os.replace(staging / MANIFEST, folder / MANIFEST)


def _manifest_files(folder: Path) -> set[str]:
    """ONNX file names the current manifest lists, only plain names inside the folder."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        entries = manifest["files"]
        names = {entry["path"] for entry in entries if isinstance(entry, dict)}
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {
        name
        for name in names
        if isinstance(name, str) and name == Path(name).name and name.endswith(".onnx")
    }
