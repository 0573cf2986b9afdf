"""The format-tag and version check every edgernn file (checkpoint, bundle manifest) passes.

Torch-free: the device runtime reads manifests with it.
"""

from __future__ import annotations

from pathlib import Path

from edgernn.errors import EdgeRNNError


def check_format(payload: object, tag: str, newest: int, path: Path, kind: str) -> None:
    """Refuse ``payload`` unless it is a dict tagged ``tag`` with a version this code reads.

    Args:
        payload: the loaded file content.
        tag: the expected ``format`` field, e.g. ``edgernn.checkpoint``.
        newest: the newest version this edgernn understands.
        path: the file, for the message.
        kind: what the file is, for the message ("checkpoint", "bundle manifest").
    """
    if not isinstance(payload, dict) or payload.get("format") != tag:
        raise EdgeRNNError(f"{path}: not an edgernn {kind} (no '{tag}' format tag)")
    version = payload.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        shown = repr(version)[:60]  # a damaged file may hold anything there
        raise EdgeRNNError(f"{path}: {kind} version must be a positive integer, got {shown}")
    if version > newest:
        raise EdgeRNNError(
            f"{path}: {kind.split()[0]} format version {version} is newer than this edgernn "
            f"reads ({newest}); upgrade edgernn"
        )
