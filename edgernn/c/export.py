"""``export_c``: an edgernn checkpoint as dependency-free C99 source, checked against PyTorch."""

from __future__ import annotations

import json
import os
from pathlib import Path

from torch import nn

from edgernn.atomic import check_folder_path
from edgernn.c.bundle import export_record, write_checked
from edgernn.c.codegen import render_source
from edgernn.c.config import CExportConfig
from edgernn.c.fixed import (
    check_integer_supported,
    fixed_arrays,
    fixed_format,
    render_fixed_source,
)
from edgernn.c.header import render_header
from edgernn.c.layout import layout, weight_arrays
from edgernn.c.readme import render_readme
from edgernn.c.seq2seq import export_seq2seq_c
from edgernn.c.verify import verify_c
from edgernn.c.weights import check_supported, model_weights
from edgernn.checkpoint import Checkpoint, check_finite, load_checkpoint
from edgernn.errors import EdgeRNNError


def export_c(
    checkpoint: Checkpoint | nn.Module | str | os.PathLike,
    out_dir: str | os.PathLike,
    config: CExportConfig | None = None,
) -> dict:
    """Write ``model.h``, ``model.c``, ``README.md`` and ``meta.json`` for ``checkpoint``.

    Args:
        checkpoint: an edgernn checkpoint (loaded, or its path), or a zoo model
            (``build_model``; it then has no input/output scaling).
        out_dir: folder to write into; created if needed, its other files are kept.
        config: precision (integer-only or not) and verification; ``CExportConfig()`` by
            default.

    Returns:
        ``{"files", "precision", "integer_only", "flash_bytes", "state_bytes",
        "scratch_bytes", "ram_bytes", "weights", "parity"}``: sizes in bytes, ``weights``
        the matrix entries, ``parity`` what ``edgernn.c.verify.verify_c`` measured.

    Raises:
        EdgeRNNError: a model the C target does not support (seq2seq, low-rank or hashed
            embeddings; integer-only: seq2seq, or an int32 sum that could overflow), NaN
            weights, ``out_dir`` under a file, or a failed parity check.

    Example::

        export_c("runs/kws.pt", "firmware/model", CExportConfig(precision="int8"))
    """
    config = config or CExportConfig()
    source = Path(checkpoint).name if isinstance(checkpoint, str | os.PathLike) else None
    model, meta = _resolve(checkpoint)
    if config.integer_only:
        check_integer_supported(model.spec)
    check_folder_path(out_dir)
    if model.spec.task == "seq2seq":
        return export_seq2seq_c(model, meta, out_dir, config, source)
    int8 = config.precision == "int8"
    norm = meta.norm if meta is not None else None
    cmodel = model_weights(model, norm)
    fixed = fixed_format(cmodel) if config.integer_only else None
    arrays = fixed_arrays(cmodel, fixed) if fixed else weight_arrays(cmodel, int8)
    sizes = layout(cmodel, arrays, integer=fixed is not None)
    source = source or ("an edgernn checkpoint" if meta is not None else "a zoo model")
    if fixed:
        code = render_fixed_source(cmodel, sizes, arrays)
    else:
        code = render_source(cmodel, sizes, arrays, int8)
    labels = meta.labels if meta else None
    texts = {
        "model.h": render_header(cmodel, sizes, int8, source, fixed),
        "model.c": code,
        "README.md": render_readme(cmodel, sizes, int8, labels, fixed),
        "meta.json": json.dumps(meta.to_dict() if meta else {}, indent=1) + "\n",
    }
    check = (lambda folder: verify_c(model, folder, norm, int8, fixed)) if config.verify else None
    files, parity = write_checked(texts, out_dir, check)
    return export_record(files, config.precision, config.integer_only, sizes, parity)


def _resolve(checkpoint) -> tuple[nn.Module, object]:
    if isinstance(checkpoint, str | os.PathLike):
        checkpoint = load_checkpoint(checkpoint)
    if isinstance(checkpoint, Checkpoint):
        check_supported(checkpoint.spec)
        check_finite(checkpoint.state_dict)
        return checkpoint.build(), checkpoint.meta
    if isinstance(checkpoint, nn.Module) and hasattr(checkpoint, "spec"):
        check_supported(checkpoint.spec)
        check_finite(checkpoint.state_dict())
        return checkpoint.eval(), None
    raise EdgeRNNError(
        f"the C target takes an edgernn checkpoint or zoo model, got {type(checkpoint).__name__}"
    )
