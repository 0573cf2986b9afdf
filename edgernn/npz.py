"""Load the ``x``, ``lengths`` and ``y`` arrays of an ``.npz`` without trusting its headers.

``np.load`` allocates whatever a member's header claims before reading a byte of it, and a
compressed member can inflate far beyond the file's size. Here each needed member's header
is read first and checked against the bytes the archive really holds and against
``MAX_NPZ_BYTES``, so a corrupt or hostile file fails with a clear error, never by
exhausting memory. Pickled (object) arrays are refused.
"""

from __future__ import annotations

import math
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from edgernn.errors import EdgeRNNError

MAX_NPZ_BYTES = 2 * 1024**3  # x + lengths + y uncompressed; split larger data into files
ARRAYS = ("x", "lengths", "y")

# What zipfile, zlib and numpy's header parser raise for damaged or unsupported archives.
_DAMAGED = (
    OSError,
    EOFError,
    ValueError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    NotImplementedError,  # a compression method zipfile lacks
    RuntimeError,  # an encrypted member
)


def load_npz(
    path: Path,
    required: tuple[str, ...] | None = ARRAYS,
    optional: tuple[str, ...] = (),
    limit: int | None = None,
) -> dict[str, np.ndarray]:
    """The ``required`` arrays of ``path`` and those of ``optional`` it has; nothing else is read.

    ``required=None`` reads every array the archive holds; ``limit`` caps their uncompressed
    bytes together (default: ``MAX_NPZ_BYTES``, read at call time).

    Torch-free: training data and the device runtime's ``predict`` inputs both come through it.

    Raises:
        EdgeRNNError: the archive is damaged, lacks an array, holds pickled objects, or
            claims more data than it holds or than ``MAX_NPZ_BYTES``.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            if required is None:
                required = tuple(i.filename.removesuffix(".npy") for i in archive.infolist())
            members = _members(path, archive, required, optional, limit or MAX_NPZ_BYTES)
            return {name: _read(path, archive, info) for name, info in members.items()}
    except _DAMAGED as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise EdgeRNNError(f"{path}: not a readable .npz archive ({reason})") from None


def _members(
    path: Path,
    archive: zipfile.ZipFile,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    limit: int,
) -> dict[str, zipfile.ZipInfo]:
    found = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
    missing = [name for name in required if name not in found]
    if missing:
        raise EdgeRNNError(f"{path}: missing arrays {missing}; need {', '.join(required)}")
    names = [name for name in (*required, *optional) if name in found]
    total = sum(found[name].file_size for name in names)
    if total > limit:
        raise EdgeRNNError(
            f"{path}: {', '.join(names)} hold {total} bytes uncompressed, more than the "
            f"{limit}-byte limit; split the data into smaller files"
        )
    return {name: found[name] for name in names}


def _read(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    name = info.filename.removesuffix(".npy")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise EdgeRNNError(f"{path}: array {name} uses .npy format {version}; save it again")
        held = info.file_size - member.tell()
    if dtype.hasobject:
        raise EdgeRNNError(
            f"{path}: array {name} holds Python objects (pickled), which are never loaded; "
            "save plain numeric or string arrays"
        )
    claimed = math.prod(shape) * dtype.itemsize
    if min(shape, default=0) < 0 or claimed > held:
        raise EdgeRNNError(
            f"{path}: array {name} claims shape {shape} ({claimed} bytes) but holds {held} "
            "bytes; the file is truncated or corrupt"
        )
    with archive.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)
