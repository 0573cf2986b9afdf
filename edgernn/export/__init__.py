"""ONNX export: verified fp32 and int8 graphs, streaming and seq2seq graphs, bundles.

Public API::

    from edgernn.export import ExportConfig, export_bundle
    bundle_dir = export_bundle(load_checkpoint("teacher.pt"), "runs/bundle")

Lower-level pieces: ``build_graphs`` (the graphs of a model), ``to_onnx`` (trace, check and
audit one graph), ``check_parity`` (ONNX Runtime vs PyTorch), ``quantize_int8``.
"""

from edgernn.export.graphs import Graph, build_graphs, exportable, streamable
from edgernn.export.int8 import quantize_int8
from edgernn.export.parity import check_parity, session
from edgernn.export.trace import OPSET, to_onnx
from edgernn.export.writer import ExportConfig, export_bundle

__all__ = [
    "OPSET",
    "ExportConfig",
    "Graph",
    "build_graphs",
    "check_parity",
    "export_bundle",
    "exportable",
    "quantize_int8",
    "session",
    "streamable",
    "to_onnx",
]
