"""Replace a bundle all at once: build it in a hidden folder, then swap it in recoverably.

An export or compress into a folder builds the new bundle in ``FOLDER/.staging-T`` and only
swaps it in when every file is written; killed before that (SIGINT, SIGKILL, a failure), the
previous bundle is left exactly as it was. The swap (``publish``) keeps one bundle complete at
every instant, even under ``kill -9``:

1. ``FOLDER/.previous-T`` is made, with ``swap.json`` naming the new files: from here on the
   swap is committed and is finished, not undone. Every old file the swap replaces or removes
   is hard-linked (copied where links fail) into it, then the old manifest moved in last:
   the old bundle is complete there from the instant it leaves ``FOLDER``.
2. The new files move into ``FOLDER``, old graphs the new bundle lacks are removed, and the
   new manifest moves in last: the new bundle is complete from that instant on.
3. ``.previous-T`` loses its manifest, then everything else, and ``.staging-T`` goes.

Readers (``read_manifest``, ``Runtime``) take the bundle from ``.previous-T`` while ``FOLDER``
has no manifest (``edgernn.bundle.manifest.complete_bundle``), without writing. The next
writer, under the folder lock, finishes an interrupted swap (``recover``): forward from
``.staging-T``, or back from ``.previous-T`` if the staging folder is gone.
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

from edgernn.atomic import write_atomic
from edgernn.bundle.manifest import MANIFEST, PREVIOUS_PREFIX
from edgernn.errors import EdgeRNNError

STAGING_PREFIX = ".staging-"
ASIDE_PREFIX = ".aside-"  # a staged subfolder waiting for swap_in_folder (set_aside)
JOURNAL = "swap.json"  # in .previous-T: the new bundle's file names; its presence commits


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
    recover(folder)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=STAGING_PREFIX))
    try:
        yield staging
        publish(staging, folder)
    finally:
        # Not yet committed: drop the staging folder. Committed but failed: finish the swap.
        recover(folder)


def publish(staging: Path, folder: Path) -> None:
    """Swap the files of ``staging`` into ``folder``, one bundle complete at every instant."""
    backup = folder / (PREVIOUS_PREFIX + staging.name.removeprefix(STAGING_PREFIX))
    new = sorted(path.name for path in staging.iterdir() if path.is_file())
    os.mkdir(backup)
    write_atomic(backup / JOURNAL, json.dumps({"new": new}).encode("utf-8"))
    if (folder / MANIFEST).is_file():
        for name in sorted((_manifest_files(folder) | set(new)) - {MANIFEST}):
            if (folder / name).is_file():
                _keep(folder / name, backup / name)
        os.replace(folder / MANIFEST, backup / MANIFEST)
    _roll_forward(staging, folder, backup, new)


def recover(folder: Path) -> None:
    """Finish a swap a killed command left half done, then delete every leftover folder.

    Safe under the folder lock only: a live writer's staging folder would go too.
    """
    for backup in sorted(folder.glob(f"{PREVIOUS_PREFIX}*")):
        staging = folder / (STAGING_PREFIX + backup.name.removeprefix(PREVIOUS_PREFIX))
        new = _journal(backup)
        if new is None or (folder / MANIFEST).exists():
            continue  # not committed, or done: the folder's bundle is complete as it is
        if MANIFEST not in new or (staging / MANIFEST).is_file():
            _roll_forward(staging, folder, backup, new)
        elif (backup / MANIFEST).is_file():
            _roll_back(folder, backup, new)
    for leftover in [*folder.glob(f"{PREVIOUS_PREFIX}*"), *folder.glob(f"{STAGING_PREFIX}*")]:
        _remove(leftover)


def _roll_forward(staging: Path, folder: Path, backup: Path, new: list[str]) -> None:
    """Move what is left in ``staging`` into ``folder``, the manifest last; idempotent."""
    for name in new:
        if name != MANIFEST and (staging / name).is_file():
            os.replace(staging / name, folder / name)
    # Graphs the old bundle had and the new one lacks (a step graph, say) would only mislead.
    for name in _manifest_files(backup) - set(new):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder / name)
    if (staging / MANIFEST).is_file():
        os.replace(staging / MANIFEST, folder / MANIFEST)
    _remove(backup)
    _remove(staging)


def set_aside(staged: Path, folder: Path) -> Path | None:
    """Move the subfolder ``staged`` of a staging folder out of the way of ``publish``.

    ``publish`` swaps files only; a subfolder (the C target's ``c/``) waits in a hidden
    ``.aside-`` folder of ``folder`` for ``swap_in_folder``; one an earlier, killed command
    left there is removed first (the caller holds the folder lock).
    """
    for leftover in folder.glob(f"{ASIDE_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    if not staged.is_dir():
        return None
    aside = Path(tempfile.mkdtemp(dir=folder, prefix=f"{ASIDE_PREFIX}{staged.name}-"))
    os.replace(staged, aside / staged.name)
    return aside


def swap_in_folder(aside: Path | None, target: Path) -> None:
    """Replace the folder ``target`` by the one ``set_aside`` kept; None removes ``target``.

    Killed half way, ``target`` is the old folder, missing, or the new one: never a mix.
    """
    old = target.with_name(f"{ASIDE_PREFIX}{target.name}-old")
    shutil.rmtree(old, ignore_errors=True)
    if target.is_dir():
        os.replace(target, old)
    if aside is not None:
        os.replace(aside / target.name, target)
        shutil.rmtree(aside, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def _roll_back(folder: Path, backup: Path, new: list[str]) -> None:
    """Put the old bundle back from ``backup``, which stays complete until its manifest moves."""
    old = {path.name for path in backup.iterdir() if path.is_file()} - {JOURNAL}
    for name in sorted(old - {MANIFEST}):
        temp = folder / f".{name}.restore"
        _keep(backup / name, temp)
        os.replace(temp, folder / name)
    for name in sorted(set(new) - old):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder / name)
    os.replace(backup / MANIFEST, folder / MANIFEST)
    _remove(backup)


def _keep(source: Path, target: Path) -> None:
    """``target`` gets ``source``'s content, by a hard link where the file system allows one."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(target)  # a leftover of an earlier, interrupted attempt
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, target, follow_symlinks=False)


def _remove(folder: Path) -> None:
    """Delete a hidden swap folder, its manifest first, so it never holds a partial bundle."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        os.unlink(folder / MANIFEST)
    shutil.rmtree(folder, ignore_errors=True)


def _journal(backup: Path) -> list[str] | None:
    try:
        new = json.loads((backup / JOURNAL).read_text(encoding="utf-8"))["new"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(new, list) or not all(isinstance(name, str) for name in new):
        return None
    return [name for name in new if name == Path(name).name and name not in ("", ".", "..")]


def _manifest_files(folder: Path) -> set[str]:
    """ONNX file names the manifest in ``folder`` lists, only plain names inside the folder."""
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
