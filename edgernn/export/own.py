"""``export_own``: a user's own module -> verified fp32 and int8 ONNX graphs in a bundle.

The bundle has the usual manifest with task ``custom``: one ``model`` graph per precision with
its inputs, outputs, sha256 and parity; no vocabulary, labels or normalization, and no metrics
(a foreign module has no task metric). ``Runtime(bundle).run("model", feeds)`` runs it.

The graph is traced on a resized copy of the example (``edgernn.export.axes`` says which axes
are batch and time) and compared with PyTorch on the example itself and on copies with other
batch sizes and lengths; fp32 must agree within the tolerance (1e-4). The dynamo exporter
sometimes fixes an axis it was asked to keep dynamic, or unrolls a recurrence; then the other
exporter is tried. Output dims are named from what the checks saw: an output axis that
follows the batch is ``batch``, one that follows the time axis ``time``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
from torch import nn

from edgernn.bundle.external import check_self_contained
from edgernn.bundle.manifest import FORMAT, MANIFEST, VERSION, write_manifest
from edgernn.errors import EdgeRNNError
from edgernn.export.axes import dynamic_axes, symbol_sizes, variants
from edgernn.export.graphs import Graph
from edgernn.export.int8 import WEIGHT_ONLY_OPS, integer_nodes, quantize_int8
from edgernn.export.ops import CELL_OF
from edgernn.export.requirements import bundle_min_onnxruntime

# trace.py's exporters without its fallback: a foreign graph must also pass parity and keep
# its dynamic axes before the other exporter is ruled out.
from edgernn.export.trace import EXPORT_FUNCTIONS, EXPORTERS, OPSET, check, strip_metadata

# The zoo export's own bundle pieces, reused so that both manifests keep one format.
from edgernn.export.writer import DTYPES, ExportConfig, GraphFile, versions, write_graph
from edgernn.own.load import OwnModel, flatten_outputs, run_forward, to_tensors
from edgernn.own.state import state_axes, state_entries, state_pairs, stream_gap

TASK = "custom"
_NUMPY = tuple(DTYPES.values())  # the dtypes a bundle's graphs take and give
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FIX_HINT = (
    "fix an axis that is neither batch nor time with --axes NAME=ROLE,... (- for fixed); "
    "packed sequences and Python loops over time do not export with a dynamic time axis"
)


def export_own(
    model: OwnModel,
    out_dir: str | Path,
    config: ExportConfig | None = None,
    axes: dict[str, tuple[str, ...]] | None = None,
) -> Path:
    """Export a user module to a ``custom`` bundle that ``edgernn.runtime`` loads.

    Args:
        model: from ``OwnModel.prepare`` (the module and its bound example inputs).
        out_dir: the bundle directory; created if needed, files in it are replaced.
        config: exporter, int8, per-channel scales and the fp32 tolerance (``evaluate`` and
            ``int8_tolerance`` do not apply: there is no task metric to measure).
        axes: per-input axis roles overriding the default rule (``edgernn.export.axes``).

    Returns:
        The bundle directory.

    Raises:
        EdgeRNNError: the module cannot be exported with those axes, or its graph differs
            from PyTorch past the tolerance.

    Example::

        model = OwnModel.prepare(load_own_module("mine.pt", True), "inputs.npz")
        export_own(model, "runs/mine")
    """
    config = config or ExportConfig()
    wrong = {n: str(a.dtype) for n, a in model.inputs.items() if a.dtype.name not in _NUMPY}
    if wrong:
        raise EdgeRNNError(
            f"example arrays {wrong}: bundle inputs are {', '.join(_NUMPY)}; save them so"
        )
    pairs = state_pairs(model)
    dynamic = dynamic_axes(model.inputs, state_axes(model, pairs) | (axes or {}))
    traced, checks = variants(model.inputs, dynamic)
    graph = _graph(model, traced, dynamic)
    proto, exporter, diff = export_verified(graph, model.module, checks, config)
    check_dtypes(proto)
    states, notes = _states(proto, model, pairs, dynamic, config.tolerance)
    files = [GraphFile("model", "fp32", proto, exporter, states, diff)]
    if config.int8:
        try:
            int8 = quantize_int8(proto, config.per_channel, embed_bits=config.embed_bits)
        except EdgeRNNError as error:  # a graph int8 cannot handle still ships in fp32
            notes.append(f"int8 skipped, the fp32 graph is kept: {error}")
        else:
            # Recorded; no metric judges it.
            loose, _ = compare_with_pytorch(model.module, int8, checks)
            record = int8_record(proto)
            files.append(
                GraphFile("model", "int8", int8, exporter, states, loose, quantization=record)
            )
    out_dir, entries = write_graphs(out_dir, files, config)
    write_manifest(out_dir, _manifest(model, entries, notes))
    return out_dir


def write_graphs(out_dir, files: list[GraphFile], config: ExportConfig) -> tuple[Path, list]:
    """Write ``files`` into ``out_dir`` (created) and return their manifest entries.

    An old manifest goes first and the caller writes the new one last: a bundle stopped
    half way never looks complete.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EdgeRNNError(f"{out_dir}: exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST).unlink(missing_ok=True)
    return out_dir, [write_graph(out_dir, item, config) for item in files]


def _states(proto, model: OwnModel, pairs, dynamic: dict, tolerance: float):
    """The graph's state pairs for the manifest, once the graph is shown to carry them."""
    if not pairs:
        return [], []
    gap = stream_gap(_session(proto), model, pairs, dynamic)
    described = ", ".join(f"{name} -> {output}" for name, output in pairs)
    if gap is not None and not gap <= tolerance:
        note = (
            f"not streamed: feeding {described} back over two halves of the example ends "
            f"{gap:.3g} away from the whole sequence's state"
        )
        return [], [note]
    checked = "" if gap is None else f" (two chunks = the whole sequence, within {gap:.2g})"
    return state_entries(model, pairs, dynamic), [f"streams: states {described}{checked}"]


def _graph(model: OwnModel, traced: dict, dynamic: dict) -> Graph:
    outputs = flatten_outputs(run_forward(model.module, traced, "a resized example"))
    return Graph(
        role="model",
        module=model.module,
        args=to_tensors(traced),
        inputs=list(traced),
        outputs=[name for name, _ in outputs],
        dynamic=dynamic,
        recurrent_nodes=recurrent_layers(model.module, model.inputs),
    )


def recurrent_layers(module: nn.Module, inputs: dict) -> int:
    # Each call of an nn.LSTM/GRU/RNN must become one fused ONNX node per layer (the op
    # audit of trace.check); counted on a real forward, so shared and unused layers count right.
    calls = []
    hooks = [
        layer.register_forward_hook(lambda layer, args, out: calls.append(layer.num_layers))
        for layer in module.modules()
        if type(layer) in CELL_OF
    ]
    try:
        run_forward(module, inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return sum(calls)


def export_verified(
    graph: Graph, module: nn.Module, checks: list[dict], config: ExportConfig
) -> tuple[onnx.ModelProto, str, float]:
    """The first exporter's graph that passes the checks, keeps the dynamic axes and
    matches PyTorch; one line with every exporter's reason when none does."""
    order = (config.exporter, *[name for name in EXPORTERS if name != config.exporter])
    failures = []
    for exporter in order:
        try:
            proto = EXPORT_FUNCTIONS[exporter](graph)
            strip_metadata(proto)
            check(proto, graph)  # onnx.checker full check, recurrent-op audit, input names
            fixed = _fixed_inputs(proto, graph.dynamic)
            if fixed:
                raise EdgeRNNError(f"the graph fixes {', '.join(fixed)}")
            diff, shapes = compare_with_pytorch(module, proto, checks)
            if not diff <= config.tolerance:  # also catches NaN
                raise EdgeRNNError(
                    f"the graph differs from PyTorch by {diff:.3g} (tolerance "
                    f"{config.tolerance:g}) on the example or a resized copy"
                )
        except Exception as error:  # exporters fail in many ways; try the other one
            failures.append(f"{exporter}: {_reason(error)}")
            continue
        _name_output_dims(proto, shapes, [symbol_sizes(c, graph.dynamic) for c in checks])
        onnx.checker.check_model(proto, full_check=True)
        return proto, exporter, diff
    raise EdgeRNNError(f"could not export the module ({'; '.join(failures)}); {_FIX_HINT}")


def _reason(error: Exception) -> str:
    # One line: torch.onnx puts the cause under "## Exception summary", after advice.
    text = _ANSI.sub("", str(error))
    lines = [line.strip() for line in text.split("## Exception summary")[-1].splitlines()]
    reason = next((line for line in lines if line), type(error).__name__)
    return reason if len(reason) <= 300 else reason[:297] + "..."


def _fixed_inputs(proto: onnx.ModelProto, dynamic: dict) -> list[str]:
    dims = {value.name: value.type.tensor_type.shape.dim for value in proto.graph.input}
    return [
        f"{name} axis {axis} ({symbol})"
        for name, axes in dynamic.items()
        for axis, symbol in axes.items()
        if not dims[name][axis].dim_param
    ]


def compare_with_pytorch(
    module: nn.Module, proto: onnx.ModelProto, checks: list[dict]
) -> tuple[float, list[list[tuple]]]:
    """Max abs difference from PyTorch over ``checks``, and the output shapes of each check."""
    sess, worst, shapes = _session(proto), 0.0, []
    for arrays in checks:
        described = ", ".join(f"{name} {list(a.shape)}" for name, a in arrays.items())
        want = flatten_outputs(run_forward(module, arrays, f"a resized example ({described})"))
        try:
            got = sess.run(None, arrays)
        except Exception as error:  # ORT reports shape problems in several exception types
            message = (str(error).strip().splitlines() or [""])[0]
            raise EdgeRNNError(f"ONNX Runtime cannot run it on {described}: {message}") from None
        for value, (name, tensor) in zip(got, want, strict=True):
            expected = tensor.numpy()
            if value.shape != expected.shape:
                raise EdgeRNNError(
                    f"its {name} has shape {list(value.shape)} on {described}; PyTorch gives "
                    f"{list(expected.shape)}"
                )
            if value.size:
                diff = np.abs(value.astype(np.float64) - expected.astype(np.float64))
                worst = max(worst, float(diff.max()))
        shapes.append([value.shape for value in got])
    return worst, shapes


def _session(proto: onnx.ModelProto):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    # Quiet: a graph declaring a wrong output size warns on every call, and a failing call
    # logs an error before it raises the exception that is reported instead.
    options.log_severity_level = 4
    data = proto.SerializeToString()
    check_self_contained(data, "exported ONNX graph")  # ORT would read it from the cwd
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _name_output_dims(proto: onnx.ModelProto, shapes: list, sizes: list[dict]) -> None:
    # Exporters name output dims after ops ("Concatoutput_1_dim_1") or even fix one that
    # varies (dynamo, seen on GRU outputs); what the checks saw is the truth.
    for index, value in enumerate(proto.graph.output):
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            seen = [check[index][axis] for check in shapes]
            if len(set(seen)) == 1 and dim.HasField("dim_value"):
                continue
            symbols = [s for s in sizes[0] if [size[s] for size in sizes] == seen]
            name = symbols[0] if symbols else f"{value.name}_dim{axis}"
            if len(set(seen)) == 1 and not symbols:
                name = dim.dim_param or name
            dim.dim_param = name  # clears dim_value (a oneof)


def check_dtypes(proto: onnx.ModelProto) -> None:
    for value in proto.graph.output:
        elem = value.type.tensor_type.elem_type
        if elem not in DTYPES:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(elem)
            raise EdgeRNNError(
                f"forward's output {value.name!r} is {dtype}; bundle outputs are "
                f"{', '.join(_NUMPY)}: cast it in forward"
            )


def int8_record(fp32: onnx.ModelProto) -> dict:
    # As the zoo's int8 entries, without a sensitivity pass: no data, no metric to measure.
    weight_only = {
        node.name: "ONNX Runtime has no integer kernel for it"
        for node in fp32.graph.node
        if node.op_type in WEIGHT_ONLY_OPS
    }
    return {
        "integer": sorted(set(integer_nodes(fp32)) - set(weight_only)),
        "weight_only": weight_only,
        "sensitivity": {},
        "tolerance": None,
        "measured_on": None,
    }


def _manifest(model: OwnModel, entries: list[dict], notes: list[str]) -> dict:
    params = sum(p.numel() for p in model.module.parameters())
    return {
        "format": FORMAT,
        "version": VERSION,
        "task": TASK,
        "model": {"class": model.class_name, "source": Path(model.source).name, "params": params},
        "input": {"type": "tensors", "tokenization": None, "features": None, "max_len": None},
        "special_tokens": None,
        "vocab": None,
        "target_vocab": None,
        "labels": None,
        "normalization": None,
        "files": entries,
        "metrics": {"note": " ".join(notes)} if notes else {},
        "opset": OPSET,
        "versions": versions(),
        # Each entry's ops and min_onnxruntime come from write_graph, as in the zoo's bundles.
        "min_onnxruntime": bundle_min_onnxruntime(entries),
    }
