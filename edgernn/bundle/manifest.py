"""The bundle directory: ``manifest.json`` plus ONNX files, written atomically, read verified.

Torch-free on purpose (stdlib only): the device runtime reads bundles with it.

Layout (format ``edgernn.bundle``, version 2; version 1 is still read)::

    BUNDLE/
      manifest.json        written last; a directory without it is not a bundle
      model.onnx           fp32, role "model"  (encoder.onnx + decoder.onnx for seq2seq)
      model.int8.onnx      int8, role "model"
      step.onnx            streaming graph with explicit state (unidirectional models)
      step.int8.onnx

Reading refuses, with one line naming the file: a manifest that is a symbolic link, larger
than ``MAX_MANIFEST_BYTES``, not JSON, another format or a newer version, or whose fields
do not fit ``edgernn.bundle.schema``; a file path that leaves the bundle (``..``, absolute,
or through a symbolic link), a missing file, a file whose sha256 differs, and a graph with a
tensor in another file (ONNX external data, ``edgernn.bundle.external``), which no sha256
covers.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

from edgernn.atomic import write_atomic
from edgernn.bundle.external import check_self_contained
from edgernn.bundle.schema import check_manifest
from edgernn.errors import EdgeRNNError
from edgernn.formats import check_format

FORMAT = "edgernn.bundle"
# Bump on incompatible manifest changes; readers refuse newer versions. 2: input.text records
# the tokenization rules (a version-1 reader would split such text wrongly, without a word).
VERSION = 2
MANIFEST = "manifest.json"
ONE_LINE = ("vocab", "target_vocab", "labels")  # lists written on one line (manifest_text)
MAX_MANIFEST_BYTES = 64 * 2**20  # real manifests are tens of KiB; never parse a giant file
MAX_FILE_BYTES = 2 * 2**30  # protobuf cannot load a larger ONNX file anyway
# While edgernn.bundle.staging swaps a bundle in, the old one waits complete in FOLDER/.previous-*.
PREVIOUS_PREFIX = ".previous-"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_manifest(directory: Path, manifest: dict) -> Path:
    """Write ``manifest.json`` atomically; call it after every file it names is in place."""
    path = directory / MANIFEST
    write_atomic(path, manifest_text(manifest).encode("utf-8"))
    return path


def manifest_text(manifest: dict) -> str:
    """Indented JSON, except token and label lists, one line each.

    One entry a line, a 20k-word vocabulary spends more bytes on indentation than on its
    words, and the app ships and loads this file.
    """
    marks = {key: f"@{uuid.uuid4().hex}" for key in ONE_LINE if isinstance(manifest.get(key), list)}
    text = json.dumps(manifest | marks, indent=2, sort_keys=True, ensure_ascii=False)
    for key, mark in marks.items():  # a fresh random mark cannot be one of the tokens
        text = text.replace(json.dumps(mark), json.dumps(manifest[key], ensure_ascii=False), 1)
    return text + "\n"


def complete_bundle(directory: str | os.PathLike) -> Path:
    """The folder holding ``directory``'s complete bundle right now; reads, never writes.

    That is ``directory`` itself, except in the middle of a swap (``edgernn.bundle.staging``)
    interrupted or still under way: then its manifest is out and the previous bundle waits,
    complete, in one ``.previous-*`` folder inside it.
    """
    directory = Path(directory)
    try:
        if (directory / MANIFEST).exists() or (directory / MANIFEST).is_symlink():
            return directory
        waiting = [
            folder
            for folder in directory.glob(f"{PREVIOUS_PREFIX}*")
            if not folder.is_symlink() and (folder / MANIFEST).is_file()
        ]
    except (OSError, ValueError):  # read_manifest reports what is wrong with directory
        return directory
    return waiting[0] if len(waiting) == 1 else directory


def read_manifest(directory: str | os.PathLike) -> dict:
    """Parse a bundle's manifest and check every field the runtime reads.

    Files are checked by ``read_file``.

    Raises:
        EdgeRNNError: no bundle there, a symlinked, oversized or unreadable manifest, another
            format, a newer version, or a field of the wrong type or shape.
    """
    if not isinstance(directory, str | os.PathLike):
        raise EdgeRNNError(f"a bundle is a directory path, got {type(directory).__name__}")
    directory = complete_bundle(directory)
    path = directory / MANIFEST
    try:
        if not directory.is_dir():
            raise EdgeRNNError(f"{directory}: no such bundle directory")
        if path.is_symlink():
            raise EdgeRNNError(
                f"{path}: is a symbolic link; a manifest must be a file in the bundle"
            )
        if not path.is_file():
            raise EdgeRNNError(f"{directory}: not a bundle (no {MANIFEST}); export one first")
        data = _read_manifest_bytes(path)
    except (OSError, ValueError) as error:  # a name too long or not encodable, no permission
        raise EdgeRNNError(f"{path}: cannot read the manifest ({_reason(error)})") from None
    manifest = _parse(data, path)
    check_bundle_manifest(manifest, path)
    return manifest


def check_bundle_manifest(manifest: object, path: Path) -> None:
    """Format tag, version and schema of a parsed manifest; ``path`` names it in messages."""
    check_format(manifest, FORMAT, VERSION, path, "bundle manifest")
    check_manifest(manifest, path)


def _read_manifest_bytes(path: Path) -> bytes:
    # O_NOFOLLOW: a link swapped in after the check in read_manifest is refused too.
    handle = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(handle, "rb") as file:
        data = file.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        cap = MAX_MANIFEST_BYTES
        raise EdgeRNNError(f"{path}: larger than {cap:,} bytes, not a manifest edgernn wrote")
    return data


def _parse(data: bytes, path: Path) -> object:
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise EdgeRNNError(f"{path}: corrupt manifest ({_reason(error)})") from None


def _reason(error: Exception) -> str:
    lines = str(error).splitlines()
    return lines[0] if lines else type(error).__name__


def read_file(directory: str | os.PathLike, entry: dict) -> bytes:
    """Read one graph the manifest names, refusing escaping paths, bad hashes, external data.

    Args:
        directory: the bundle directory.
        entry: one item of ``manifest["files"]`` (``path`` and ``sha256``).

    Returns:
        The verified file content.

    Raises:
        EdgeRNNError: the path escapes the bundle (``..``, absolute, or a symbolic link to
            outside, of the file or of a folder on its way), the file is missing or over
            ``MAX_FILE_BYTES``, its sha256 differs, or it is not a self-contained ONNX file
            (a tensor with external data, which the sha256 does not cover).
    """
    root = complete_bundle(directory).resolve()
    name = entry.get("path")
    if not isinstance(name, str) or not name or "\x00" in name or Path(name).is_absolute():
        raise EdgeRNNError(f"{root}: manifest file path {name!r} must be relative to the bundle")
    if ".." in Path(name).parts:
        raise EdgeRNNError(f"{root}: manifest file {name!r} points outside the bundle; refusing")
    try:
        data = _read_inside(root, name)
    except (OSError, RuntimeError, ValueError) as error:  # a link loop, a name too long, ...
        raise EdgeRNNError(f"{root}: cannot read {name!r} ({_reason(error)})") from None
    if sha256_bytes(data) != entry.get("sha256"):
        raise EdgeRNNError(
            f"{root}: {name} does not match its sha256 in the manifest (corrupt or modified); "
            "export the bundle again"
        )
    check_self_contained(data, f"{root}: {name}")
    return data


def _read_inside(root: Path, name: str) -> bytes:
    path = (root / name).resolve()  # follows every symbolic link on the way
    if not path.is_relative_to(root):
        raise EdgeRNNError(
            f"{root}: manifest file {name!r} points outside the bundle (through a symbolic "
            "link); refusing"
        )
    if not path.is_file():
        raise EdgeRNNError(f"{root}: {name} is missing; the bundle is incomplete, export it again")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise EdgeRNNError(f"{root}: {name} is larger than {MAX_FILE_BYTES // 2**30} GiB")
    return path.read_bytes()
