"""One writer per output folder: ``run.lock``, held with an OS file lock.

The kernel drops the lock when its process dies, even by SIGKILL, so a killed run never leaves
a lock that blocks the next one; a live one refuses a second command into the same folder.
Torch-free (stdlib only).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from edgernn.atomic import make_folder
from edgernn.errors import EdgeRNNError

LOCK_FILE = "run.lock"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold ``folder/run.lock`` for the duration of the block; create ``folder`` if needed.

    A folder this call created is removed again if the block leaves it empty (a command that
    failed before writing anything leaves no trace).

    Raises:
        EdgeRNNError: another live edgernn command holds it.

    Example::

        with folder_lock("runs/demo"):
            ...  # write into runs/demo
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise EdgeRNNError(f"{folder}: exists and is not a directory")
    created = not folder.exists()
    make_folder(folder)
    path = folder / LOCK_FILE
    handle = _acquire(path)
    try:
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}\n".encode())
        yield path
    finally:
        # Unlink while still holding the lock, so no one can lock the file we are leaving.
        path.unlink(missing_ok=True)
        os.close(handle)
        if created and not any(folder.iterdir()):
            folder.rmdir()


def _acquire(path: Path) -> int:
    while True:
        handle = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            owner = path.read_text(errors="replace").strip() or "unknown"
            raise EdgeRNNError(
                f"{path.parent}: another edgernn command (pid {owner}) is writing there; wait "
                "for it to finish or choose another output folder"
            ) from None
        # The holder before us may have unlinked the file between our open and our lock:
        # then we hold a lock on a file no one else can see. Start over on the new one.
        if _same_file(handle, path):
            return handle
        os.close(handle)


def _same_file(handle: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(handle), os.stat(path))
    except FileNotFoundError:
        return False
