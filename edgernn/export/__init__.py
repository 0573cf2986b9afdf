"""ONNX export: verified fp32 and int8 graphs, streaming and seq2seq graphs, bundles.

Public API::

    from edgernn.export import ExportConfig, export_bundle
    bundle_dir = export_bundle(load_checkpoint("teacher.pt"), "runs/bundle")

Lower-level pieces: ``build_graphs`` (the graphs of a model), ``to_onnx`` (trace, check and
audit one graph), ``check_parity`` (ONNX Runtime vs PyTorch), ``quantize_int8``.
Exports resolve lazily: ``config`` is torch-free, so the command line reads its defaults
without importing torch or onnx.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "OPSET": "edgernn.export.trace",
    "ExportConfig": "edgernn.export.config",
    "Graph": "edgernn.export.graphs",
    "build_graphs": "edgernn.export.graphs",
    "check_parity": "edgernn.export.parity",
    "export_bundle": "edgernn.export.writer",
    "exportable": "edgernn.export.graphs",
    "quantize_int8": "edgernn.export.int8",
    "session": "edgernn.export.parity",
    "streamable": "edgernn.export.graphs",
    "to_onnx": "edgernn.export.trace",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module '{__name__}' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
