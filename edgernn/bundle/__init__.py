"""Bundles: the manifest (read, write, schema) and publishing a bundle folder whole.

Stdlib only, like the runtime that reads them: ``manifest`` reads and writes
``manifest.json`` and the files it lists, ``schema`` checks every field, ``external`` refuses
graphs with tensors in other files, ``staging`` builds a bundle aside and swaps it in
(``docs/bundle.md`` has the format).
"""

from edgernn.bundle.manifest import (
    FORMAT,
    MANIFEST,
    VERSION,
    read_file,
    read_manifest,
    sha256_bytes,
    write_manifest,
)
from edgernn.bundle.staging import staged_folder

__all__ = [
    "FORMAT",
    "MANIFEST",
    "VERSION",
    "read_file",
    "read_manifest",
    "sha256_bytes",
    "staged_folder",
    "write_manifest",
]
