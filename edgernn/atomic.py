"""Atomic file writes: a crash or Ctrl-C never leaves a half-written file under the real name.

Torch-free: the device runtime and the bench workers use it too.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgernn.errors import EdgeRNNError

# A full disk, an exhausted quota, a file over the file system's size limit: the user's to fix.
_DISK_FULL = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "no space left under the disk quota",
    errno.EFBIG: "no space for a file this large on that file system",
}
DISK_FULL_FIX = "free some space or write somewhere else, then run the command again"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place if the block succeeds.

    Example::

        with atomic_path("model.pt") as temp:
            torch.save(payload, temp)
    """
    path = Path(path)
    temp = None
    try:
        with disk_errors(path):
            handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            # mkstemp makes the file private (0600); a bundle or checkpoint is shared and
            # deployed, so give it the mode any other new file gets here.
            os.fchmod(handle, 0o666 & ~_umask())
            os.close(handle)
            yield Path(temp)
            os.replace(temp, path)
    finally:
        if temp is not None and os.path.exists(temp):
            os.remove(temp)


@contextmanager
def disk_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn a full disk or quota inside the block into a one-line error about ``path``.

    Any other error passes through unchanged.

    Raises:
        EdgeRNNError: the block failed because the disk (or quota) under ``path`` is full.

    Example::

        with disk_errors(output):
            write_everything(output)
    """
    try:
        yield
    except Exception as error:
        reason = disk_full(error)
        if reason is None:
            raise
        raise EdgeRNNError(f"{path}: cannot write it: {reason}; {DISK_FULL_FIX}") from error


def disk_full(error: BaseException) -> str | None:
    """Say why, if ``error`` (or an error it was raised from) is a full disk or quota.

    Writers such as ``torch.save`` turn a failed ``write`` into their own error; the
    ``OSError`` stays reachable as its cause or context.

    Returns:
        A few words ("no space left on device"), or None for any other error.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _DISK_FULL:
            return _DISK_FULL[error.errno]
        error = error.__cause__ or error.__context__
    return None


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, rename it in.

    Args:
        path: destination; its directory must exist.
        data: the whole file content.

    Returns:
        ``path``.

    Example::

        write_atomic(Path("out/report.md"), text.encode("utf-8"))
    """
    with atomic_path(path) as temp, open(temp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return Path(path)


def check_folder_path(folder: str | os.PathLike) -> None:
    """Refuse a folder path that is, or lies under, something other than a directory.

    Raises:
        EdgeRNNError: ``folder`` or its nearest existing parent is not a directory.
    """
    folder = Path(folder)
    for place in (folder, *folder.parents):
        if place.exists():
            if not place.is_dir():
                raise EdgeRNNError(f"{place} is a file, not a folder; choose another output path")
            return


def make_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` and its parents, refusing one that is (or lies under) a file.

    Raises:
        EdgeRNNError: see ``check_folder_path``; or the OS refuses to create it.

    Example::

        make_folder("runs/demo")   # -o somefile.txt/out is refused with one line
    """
    check_folder_path(folder)
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EdgeRNNError(f"{folder}: cannot create the folder ({error.strerror})") from None
    return folder


def _umask() -> int:
    current = os.umask(0)  # the only way to read it is to set it
    os.umask(current)
    return current
