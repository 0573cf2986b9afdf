"""Writing a C export: its files checked in a scratch folder first, then into ``out_dir``.

``export_c`` and ``export_seq2seq_c`` both end here, so ``out_dir`` only ever gets code that
passed its parity check, and both return the same record.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from edgernn.atomic import make_folder, write_atomic

FILES = ("model.h", "model.c", "README.md", "meta.json")


def write_checked(
    texts: dict[str, str], out_dir: str | os.PathLike, check: Callable[[Path], dict] | None
) -> tuple[list[str], dict]:
    """Write ``texts`` (one per name in ``FILES``) to ``out_dir`` once ``check`` passed.

    Args:
        texts: file name -> contents.
        out_dir: folder to write into; created if needed, its other files are kept.
        check: runs on a scratch folder holding ``texts`` and returns the parity record
            (raising on a failed check); None when verification is turned off.

    Returns:
        The paths written, in ``FILES`` order, and the parity record.
    """
    parity = {"checked": False, "note": "verification turned off"}
    with tempfile.TemporaryDirectory(prefix="edgernn-c-src-") as scratch:
        for name, text in texts.items():
            (Path(scratch) / name).write_text(text, encoding="utf-8")
        if check is not None:
            parity = check(Path(scratch)) or parity
    folder = make_folder(out_dir)
    return [str(write_atomic(folder / name, texts[name].encode("utf-8"))) for name in FILES], parity


def export_record(
    files: list[str], precision: str, integer_only: bool, sizes, parity: dict
) -> dict:
    """What ``export_c`` returns: the files, the precision, the sizes in bytes and the parity.

    ``sizes`` is a ``Layout`` or ``Seq2SeqLayout``: both carry the sizes named here.
    """
    return {
        "files": files,
        "precision": precision,
        "integer_only": integer_only,
        "flash_bytes": sizes.flash_bytes,
        "state_bytes": sizes.state_bytes,
        "scratch_bytes": sizes.scratch_bytes,
        "ram_bytes": sizes.ram_bytes,
        # matrix entries (recurrent, head, embedding); biases, scales and scaling excluded
        "weights": sizes.weights,
        "parity": parity,
    }
