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

from edgernn.lazy import lazy_exports

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

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
