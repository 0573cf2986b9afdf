"""The bundle directory: ``manifest.json`` plus ONNX files, written atomically, read verified.

Torch-free on purpose (stdlib only): the device runtime reads bundles with it.

Layout (format ``edgernn.bundle``, version 1)::

    BUNDLE/
      manifest.json        written last; a directory without it is not a bundle
      model.onnx           fp32, role "model"  (encoder.onnx + decoder.onnx for seq2seq)
      model.int8.onnx      int8, role "model"
      step.onnx            streaming graph with explicit state (unidirectional models)
      step.int8.onnx
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from edgernn.atomic import atomic_path
from edgernn.errors import EdgeRNNError
from edgernn.formats import check_format

FORMAT = "edgernn.bundle"
VERSION = 1  # bump on incompatible manifest changes; readers refuse newer versions
MANIFEST = "manifest.json"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place.

    Args:
        path: destination; its directory must exist.
        data: the whole file content.
    """
    with atomic_path(path) as temp, open(temp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def write_manifest(directory: Path, manifest: dict) -> Path:
    """Write ``manifest.json`` atomically; call it after every file it names is in place."""
    path = directory / MANIFEST
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_atomic(path, text.encode("utf-8"))
    return path


def read_manifest(directory: str | os.PathLike) -> dict:
    """Parse and sanity-check a bundle's manifest (files are checked by ``read_file``).

    Raises:
        EdgeRNNError: no bundle there, unreadable JSON, another format, or a newer version.
    """
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.is_dir():
        raise EdgeRNNError(f"{directory}: no such bundle directory")
    if not path.is_file():
        raise EdgeRNNError(f"{directory}: not a bundle (no {MANIFEST}); export one first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EdgeRNNError(f"{path}: corrupt manifest ({error})") from None
    check_format(manifest, FORMAT, VERSION, path, "bundle manifest")
    if not isinstance(manifest.get("files"), list) or not manifest["files"]:
        raise EdgeRNNError(f"{path}: the manifest lists no files")
    return manifest


def read_file(directory: str | os.PathLike, entry: dict) -> bytes:
    """Read one file the manifest names, refusing paths outside the bundle and bad hashes.

    Args:
        directory: the bundle directory.
        entry: one item of ``manifest["files"]`` (``path`` and ``sha256``).

    Returns:
        The verified file content.

    Raises:
        EdgeRNNError: the path escapes the bundle, the file is missing, or its sha256 differs.
    """
    root = Path(directory).resolve()
    name = entry.get("path")
    if not isinstance(name, str) or not name or Path(name).is_absolute():
        raise EdgeRNNError(f"{root}: manifest file path {name!r} must be relative to the bundle")
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise EdgeRNNError(f"{root}: manifest file {name!r} points outside the bundle; refusing")
    if not path.is_file():
        raise EdgeRNNError(f"{root}: {name} is missing; the bundle is incomplete, export it again")
    data = path.read_bytes()
    if sha256_bytes(data) != entry.get("sha256"):
        raise EdgeRNNError(
            f"{root}: {name} does not match its sha256 in the manifest (corrupt or modified); "
            "export the bundle again"
        )
    return data


def check_feeds(entry: dict, feeds: dict) -> None:
    """Check numpy feeds against a file entry's inputs: names, dtypes, ranks, consistent dims.

    Raises:
        EdgeRNNError: naming the first input that does not fit, and what it should be.
    """
    expected = {spec["name"]: spec for spec in entry["inputs"]}
    if set(feeds) != set(expected):
        raise EdgeRNNError(f"{entry['path']} takes inputs {sorted(expected)}, got {sorted(feeds)}")
    sizes: dict[str, int] = {}
    for name, spec in expected.items():
        value = feeds[name]
        if str(getattr(value, "dtype", "")) != spec["dtype"] or not hasattr(value, "shape"):
            got = getattr(value, "dtype", type(value).__name__)
            raise EdgeRNNError(f"input {name!r} must be a numpy {spec['dtype']} array, got {got}")
        shape = spec["shape"]
        fits = value.ndim == len(shape) and all(
            size == dim if isinstance(dim, int) else sizes.setdefault(dim, size) == size
            for size, dim in zip(value.shape, shape, strict=False)  # rank checked first
        )
        if not fits or 0 in value.shape:
            raise EdgeRNNError(f"input {name!r} must have shape {shape}, got {list(value.shape)}")
