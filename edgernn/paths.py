"""Refuse an output that would overwrite a command's own input (torch-free, stdlib only).

``edgernn train --data same.csv -o same.csv`` would replace the training data with the
checkpoint, and ``edgernn compress runs/student.pt -o runs`` the model with its student. Every
command that writes calls ``check_output_not_input`` before any work.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from edgernn.errors import EdgeRNNError

BUILTIN_PREFIX = "builtin:"  # DATA naming an embedded dataset: no path on disk


def data_path(data: str | None) -> str | None:
    """The path a DATA argument reads, or None for ``builtin:NAME`` and no data."""
    if data is None or data.startswith(BUILTIN_PREFIX):
        return None
    return data


def check_output_not_input(
    output: str | os.PathLike,
    inputs: Iterable[tuple[str, str | os.PathLike | None]],
    folder: bool = False,
    flag: str = "-o",
) -> None:
    """Refuse ``output`` if it is an input, lies inside an input folder, or holds an input.

    Paths are compared after following symbolic links (``os.path.realpath``), and existing
    files also by device and inode, so a hard link to an input counts as that input.

    Args:
        output: what the command writes: a file, or with ``folder`` a folder it fills.
        inputs: ``(what, path)`` for everything the command reads, e.g. ``("--data", data)``;
            a path of None is skipped (use ``data_path`` for DATA arguments).
        folder: ``output`` is a folder whose files the command replaces; then it also may not
            hold any input.
        flag: the option ``output`` came from, for the message.

    Raises:
        EdgeRNNError: one line naming the output, the input and what to do.

    Example::

        check_output_not_input(out, [("--data", data_path(data))])
    """
    target = Path(os.path.realpath(output))
    for what, path in inputs:
        if path is None:
            continue
        source = Path(os.path.realpath(path))
        problem = _collision(target, source, folder)
        if problem:
            kind = "output folder" if folder else "output path"
            raise EdgeRNNError(
                f"{flag} {output}: {problem} {what} {path}; choose another {kind}, so the "
                "input is not overwritten"
            )


def _collision(target: Path, source: Path, folder: bool) -> str | None:
    if target == source or _same_file(target, source):
        return "is the input"
    if source.is_dir() and target.is_relative_to(source):
        return "is inside the input folder"
    if folder and source.is_relative_to(target):
        return "holds the input"
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samestat(os.stat(a), os.stat(b))
    except (OSError, ValueError):  # either is missing (a new output), or a name not encodable
        return False
