"""The C target: a checkpoint as dependency-free C99 (model.h, model.c) for microcontrollers.

Public API::

    from edgernn.c import CExportConfig, export_c
    result = export_c("runs/kws.pt", "firmware/model", CExportConfig(precision="int8"))
    result["flash_bytes"], result["ram_bytes"]
    export_c("runs/kws.pt", "firmware/fixed", CExportConfig(integer_only=True))  # no FPU

Scoring and timing an export: ``CModule`` (``edgernn.c.score``) runs its compiled harness
as a model for ``edgernn.evaluate.evaluate``; ``build_bench``/``c_latency_ms``
(``edgernn.c.timing``) time ``edgernn_run`` on this host.

``config`` is torch-free, so the command line reads its defaults without importing torch.
"""

from __future__ import annotations

from edgernn.lazy import lazy_exports

_EXPORTS = {
    "CExportConfig": "edgernn.c.config",
    "PRECISIONS": "edgernn.c.config",
    "export_c": "edgernn.c.export",
    "CModule": "edgernn.c.score",
    "build_bench": "edgernn.c.timing",
    "c_latency_ms": "edgernn.c.timing",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
