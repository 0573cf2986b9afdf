"""The C target for seq2seq models: encoder, attention and one decoder step as C99.

``export_seq2seq_c`` is what ``edgernn.c.export_c`` runs for a seq2seq model: the weights
(``seq2seq_weights``) written with ``templates/seq2seq.c`` (``seq2seq_codegen``), a README
(``seq2seq_readme``), all checked against PyTorch (``seq2seq_verify``) before anything is
written to the output folder.
"""

from __future__ import annotations

import json

from torch import nn

from edgernn.c.bundle import export_record, write_checked
from edgernn.c.seq2seq_codegen import render_header, render_source, seq2seq_layout
from edgernn.c.seq2seq_readme import render_readme
from edgernn.c.seq2seq_verify import verify_seq2seq_c
from edgernn.c.seq2seq_weights import seq2seq_arrays, seq2seq_weights
from edgernn.errors import EdgeRNNError


def export_seq2seq_c(model: nn.Module, meta, out_dir, config, source: str | None) -> dict:
    """``export_c`` for a seq2seq model: model.h, model.c, README.md and meta.json.

    Args:
        model: the seq2seq zoo model (checked finite and supported by the caller).
        meta: its ``DataMeta`` (vocabularies), or None for a bare zoo model.
        out_dir: folder to write into; only ever gets code that passed the parity check.
        config: a ``CExportConfig``.
        source: the checkpoint's file name for model.h's banner, or None.

    Returns:
        The same keys as ``export_c``: files, precision, flash/state/scratch/ram bytes,
        weights (matrix entries) and parity (``verify_seq2seq_c``'s record).
    """
    if getattr(config, "integer_only", False):
        raise EdgeRNNError(
            "--integer-only does not support seq2seq models yet; export with int8 weights "
            "(float activations, the default) or --no-int8"
        )
    int8 = config.precision == "int8"
    cmodel = seq2seq_weights(model.eval())
    arrays = seq2seq_arrays(cmodel, int8)
    sizes = seq2seq_layout(cmodel, arrays)
    source = source or ("an edgernn checkpoint" if meta is not None else "a zoo model")
    texts = {
        "model.h": render_header(cmodel, sizes, int8, source),
        "model.c": render_source(cmodel, sizes, arrays, int8),
        "README.md": render_readme(cmodel, sizes, int8),
        "meta.json": json.dumps(meta.to_dict() if meta else {}, indent=1) + "\n",
    }
    check = (lambda folder: verify_seq2seq_c(model, folder, int8)) if config.verify else None
    files, parity = write_checked(texts, out_dir, check)
    return export_record(files, config.precision, False, sizes, parity)
