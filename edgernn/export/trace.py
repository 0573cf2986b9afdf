"""Trace a ``Graph`` to ONNX: the dynamo exporter first, the TorchScript one as a fallback.

What we found by trying (torch 2.13, onnxscript 0.7, onnx 1.23, ORT 1.32, opset 18):

- Neither exporter takes the zoo models as they stand. ``torch.export`` fails inside
  ``pack_padded_sequence`` (data-dependent sizes: "zeros(): argument 'size' ... got
  FakeTensor"); the TorchScript exporter crashes in its ONNX peephole pass on the packed
  ``enforce_sorted=False`` graph ("vector::_M_range_check"). Hence ``edgernn::rnn_layer``
  (``ops.py``) and the export modules of ``graphs.py``.
- With those, both exporters handle every zoo graph (every cell, direction, layer count,
  task, both attentions) with dynamic batch and time axes, and both pass the parity check
  at ~1e-7. Dynamo is the default: its graphs come out optimised (a third to a half of the
  nodes) with clean symbolic dims on every output ("batch", "time"), where TorchScript
  names output dims after ops ("Concatstate_h_out_dim_1"). Its cost: ~0.8 s of CPU per
  graph against ~0.02 s, about half of it rebuilding the torchlib registry on every call.
- TorchScript stays as the fallback for whatever dynamo cannot trace (it is deprecated
  in torch 2.9+, so it is not the first choice); the manifest records the exporter.

Every result is checked with ``onnx.checker`` (full check, strict shape inference) and
audited: each recurrent layer must be one ONNX ``LSTM``/``GRU``/``RNN`` node, and the graph
may hold no ``Loop``/``Scan``/``If`` (an unrolled or control-flow recurrence).
"""

from __future__ import annotations

import io
import logging
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import onnx
import torch

from edgernn.errors import EdgeRNNError
from edgernn.export.config import EXPORTERS
from edgernn.export.graphs import Graph
from edgernn.export.ops import ONNX_RECURRENT, onnx_rnn_layer, torchscript_rnn_layer

OPSET = 18  # ORT >= 1.14 runs it; the newest opset torchlib writes natively
FORBIDDEN_OPS = ("Loop", "Scan", "If")
_log = logging.getLogger(__name__)


def to_onnx(graph: Graph, prefer: str = "dynamo") -> tuple[onnx.ModelProto, str]:
    """Export ``graph``, check it and audit its ops.

    Args:
        graph: from ``build_graphs``.
        prefer: ``dynamo`` (tries TorchScript when dynamo fails) or ``torchscript``.

    Returns:
        ``(model, exporter)``: the checked ONNX model and the exporter that wrote it.

    Raises:
        EdgeRNNError: both exporters failed, or the checker or the op audit rejected a graph.
    """
    order = EXPORTERS if prefer == "dynamo" else EXPORTERS[::-1]
    failures = []
    for exporter in order:
        try:
            model = EXPORT_FUNCTIONS[exporter](graph)
        except Exception as error:  # exporters fail in many ways; try the other one
            _log.info("%s exporter failed on %s graph: %s", exporter, graph.role, error)
            failures.append(f"{exporter}: {str(error).splitlines()[0][:200]}")
            continue
        strip_metadata(model)
        check(model, graph)
        return model, exporter
    raise EdgeRNNError(f"could not export the {graph.role} graph to ONNX ({'; '.join(failures)})")


@contextmanager
def _quiet() -> Iterator[None]:
    # The exporters chat through warnings and logging (deprecations, torchvision); mute them.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _dynamo(graph: Graph) -> onnx.ModelProto:
    dims: dict[str, torch.export.Dim] = {}
    dynamic_shapes = {
        name: {axis: dims.setdefault(dim, torch.export.Dim(dim)) for axis, dim in axes.items()}
        for name, axes in graph.dynamic.items()
    }
    with _quiet():
        program = torch.onnx.export(
            graph.module,
            graph.args,
            dynamo=True,
            input_names=graph.inputs,
            output_names=graph.outputs,
            dynamic_shapes={name: dynamic_shapes.get(name) for name in graph.inputs},
            custom_translation_table={torch.ops.edgernn.rnn_layer.default: onnx_rnn_layer},
            opset_version=OPSET,
            verbose=False,
        )
    return program.model_proto


def _torchscript(graph: Graph) -> onnx.ModelProto:
    torch.onnx.register_custom_op_symbolic("edgernn::rnn_layer", torchscript_rnn_layer, OPSET)
    buffer = io.BytesIO()
    with _quiet():
        torch.onnx.export(
            graph.module,
            graph.args,
            buffer,
            dynamo=False,
            input_names=graph.inputs,
            output_names=graph.outputs,
            dynamic_axes=graph.dynamic,
            opset_version=OPSET,
        )
    return onnx.load_from_string(buffer.getvalue())


EXPORT_FUNCTIONS = {"dynamo": _dynamo, "torchscript": _torchscript}


def strip_metadata(model: onnx.ModelProto) -> None:
    # The dynamo exporter annotates every node and value with tracing metadata (stack
    # traces, FX names); for a small model that is a tenth of the file and of no use on a
    # device. Intermediate shapes are dropped too: the checker infers them again.
    del model.graph.value_info[:]
    for item in [*model.graph.node, *model.graph.input, *model.graph.output]:
        del item.metadata_props[:]
    for tensor in model.graph.initializer:
        del tensor.metadata_props[:]
    model.graph.doc_string = ""


def check(model: onnx.ModelProto, graph: Graph) -> None:
    """``onnx.checker`` with full check, then the recurrent-op audit.

    Raises:
        EdgeRNNError: the model is invalid, a recurrent layer is not one ONNX node, or the
            graph holds control flow.
    """
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        raise EdgeRNNError(f"the exported {graph.role} graph is not valid ONNX: {error}") from None
    ops = Counter(node.op_type for node in model.graph.node)
    recurrent = sum(ops[name] for name in ONNX_RECURRENT.values())
    loops = sorted(name for name in FORBIDDEN_OPS if ops[name])
    if recurrent != graph.recurrent_nodes or loops:
        raise EdgeRNNError(
            f"the exported {graph.role} graph has {recurrent} recurrent ONNX nodes "
            f"(expected {graph.recurrent_nodes}, one per layer) and control flow {loops}; "
            "it would not run as fused recurrent kernels"
        )
    names = [value.name for value in model.graph.input]
    if names != graph.inputs:
        raise EdgeRNNError(f"the {graph.role} graph has inputs {names}, expected {graph.inputs}")
