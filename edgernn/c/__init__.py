"""The C target: a checkpoint as dependency-free C99 (model.h, model.c) for microcontrollers.

Public API::

    from edgernn.c import CExportConfig, export_c
    result = export_c("runs/kws.pt", "firmware/model", CExportConfig(precision="int8"))
    result["flash_bytes"], result["ram_bytes"]

``config`` is torch-free, so the command line reads its defaults without importing torch.
"""

from __future__ import annotations

from edgernn.lazy import lazy_exports

_EXPORTS = {
    "CExportConfig": "edgernn.c.config",
    "PRECISIONS": "edgernn.c.config",
    "export_c": "edgernn.c.export",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
