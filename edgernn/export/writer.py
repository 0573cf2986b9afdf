"""``export_bundle``: checkpoint -> verified fp32 and int8 ONNX graphs + manifest, on disk."""

from __future__ import annotations

import platform
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from torch import nn

from edgernn import __version__
from edgernn.atomic import write_atomic
from edgernn.bundle.manifest import FORMAT, MANIFEST, VERSION, sha256_bytes, write_manifest
from edgernn.checkpoint import Checkpoint, check_finite, checkpoint_data
from edgernn.data.vocab import SPECIALS
from edgernn.errors import EdgeRNNError
from edgernn.export.config import ExportConfig
from edgernn.export.graphs import build_graphs
from edgernn.export.int8 import (
    WEIGHT_ONLY_OPS,
    batch_dependence,
    embedding_tables,
    integer_nodes,
    quantize_int8,
)
from edgernn.export.parity import STREAM_TOLERANCE, check_parity, session
from edgernn.export.requirements import bundle_min_onnxruntime, graph_requirements
from edgernn.export.scoring import int8_sensitivity, runtime_metrics, score_bundle
from edgernn.export.surgery import zero_state_graph
from edgernn.export.trace import OPSET, check, to_onnx
from edgernn.metrics import drop_unit
from edgernn.runtime import Runtime
from edgernn.tasks import primary_metric

ROLES = ("model", "step", "encoder", "decoder")  # also the order files are listed in
DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64"}
DTYPES |= {onnx.TensorProto.BOOL: "bool"}
SENSITIVITY_SPLIT = "valid"  # int8 nodes are chosen on it; the test split only reports
SCORED_AS = {"step": "model"}  # the step graph holds the model graph's nodes (surgery.py)


@dataclass
class GraphFile:
    """One ONNX graph on its way into a bundle (zoo and foreign exports alike)."""

    role: str
    precision: str
    proto: onnx.ModelProto
    exporter: str
    states: list[dict]
    parity: float
    derived_from: str | None = None
    quantization: dict | None = None  # int8 only: which nodes run integer kernels, and why

    @property
    def path(self) -> str:
        infix = ".int8" if self.precision == "int8" else ""
        return f"{self.role}{infix}.onnx"


def export_bundle(
    checkpoint: Checkpoint,
    out_dir: str | Path,
    data: str | None = None,
    config: ExportConfig | None = None,
) -> Path:
    """Export a checkpoint to a bundle directory that ``edgernn.runtime`` loads.

    Every graph is checked (``onnx.checker``, op audit) and compared with the PyTorch model
    on unseen padded shapes; the export fails rather than write a graph past the tolerance.
    In the int8 graphs, an LSTM/MatMul whose integer kernel alone costs more than
    ``config.int8_tolerance`` on the valid split computes in float from int8 weights; each
    int8 file's manifest entry records the choice (``quantization``).

    Args:
        checkpoint: a trained (or compressed) edgernn checkpoint.
        out_dir: the bundle directory; created if needed, files in it are replaced.
        data: DATA whose test split scores the exported graphs (and whose valid split picks
            the int8 nodes); default: the checkpoint's.
        config: export options; defaults to fp32 + int8 with evaluation.

    Returns:
        The bundle directory.

    Example::

        bundle = export_bundle(load_checkpoint("teacher.pt"), "runs/bundle")
    """
    config = config or ExportConfig()
    check_finite(checkpoint.state_dict)
    model = checkpoint.build()
    files = _export_graphs(model, config)
    if config.int8:
        files += _int8_files(checkpoint, model, files, config, data)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EdgeRNNError(f"{out_dir}: exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    # The manifest goes first and comes back last: a crash in between leaves no bundle that
    # looks complete, only one the runtime refuses.
    (out_dir / MANIFEST).unlink(missing_ok=True)
    entries = [write_graph(out_dir, item, config) for item in sorted(files, key=_file_order)]
    manifest = _manifest(checkpoint, entries)
    manifest["min_onnxruntime"] = bundle_min_onnxruntime(entries)  # the newest a file needs
    if config.evaluate:
        manifest["metrics"] = score_bundle(checkpoint, out_dir, manifest, data)
    write_manifest(out_dir, manifest)
    return out_dir


def _export_graphs(model: nn.Module, config: ExportConfig) -> list[GraphFile]:
    graphs = build_graphs(model)
    by_role, fp32 = {graph.role: graph for graph in graphs}, {}
    for graph in graphs:
        if graph.derive:
            proto, exporter = fp32[graph.derive]
            fp32[graph.role] = zero_state_graph(proto, by_role[graph.derive].states), exporter
            check(fp32[graph.role][0], graph)
        else:
            fp32[graph.role] = to_onnx(graph, config.exporter)
    sessions = {role: session(proto) for role, (proto, _) in fp32.items()}
    diffs = check_parity(model, sessions, config.tolerance)
    return [
        GraphFile(g.role, "fp32", *fp32[g.role], g.states, diffs[g.role], g.derive) for g in graphs
    ]


def _int8_files(
    checkpoint: Checkpoint, model: nn.Module, fp32: list[GraphFile], config: ExportConfig, data
) -> list[GraphFile]:
    plans, examples = _int8_plans(checkpoint, fp32, config, data)
    files = []
    for item in fp32:
        weight_only = plans[item.role]["weight_only"]
        proto = quantize_int8(
            item.proto, config.per_channel, weight_only=weight_only, embed_bits=config.embed_bits
        )
        # Per embedding Gather: 4 or 8 bits, and why a table asked for 4 stays int8.
        plans[item.role]["embedding_tables"] = embedding_tables(item.proto, config.embed_bits)
        files.append(replace(item, precision="int8", proto=proto, quantization=plans[item.role]))
    # int8 is allowed to differ; the number is recorded, the metric decides if it is good.
    sessions = {f.role: session(f.proto) for f in files}
    loose = check_parity(model, sessions, np.inf, np.inf)
    # Integer kernels quantize each call's input with one scale for the whole tensor, so a
    # result depends on its batch mates, padding and chunking (int8.py); weight-only does
    # not. Recorded per file: whether it can, and how much it did on the valid split.
    scored = {role: sess for role, sess in sessions.items() if role not in SCORED_AS}
    states = next((f.states for f in files if f.role == "decoder"), [])
    measured = batch_dependence(scored, examples, states) if examples else None
    for item in files:
        item.quantization["batch_dependent"] = bool(item.quantization["integer"])
        item.quantization["batch_max_abs_diff"] = measured
    return [replace(item, parity=loose[item.role]) for item in files]


def _int8_plans(
    checkpoint: Checkpoint, fp32: list[GraphFile], config: ExportConfig, data
) -> tuple[dict, list | None]:
    # Per role (the manifest's "quantization"): the nodes on ORT's integer kernels, those
    # computing in float from int8 weights and why, and what each integer node alone cost;
    # and the valid examples it measured on (None: no data, or no measuring asked for).
    from edgernn.data import iterate_batches
    from edgernn.export.scoring import OnnxModel
    from edgernn.tasks import TASKS

    drops, measured_on, examples = {}, None, None
    if config.int8_tolerance is not None:  # no data (or none recorded): nothing to measure
        encoded, _ = checkpoint_data(checkpoint, data)
        examples = encoded.splits[SENSITIVITY_SPLIT] if encoded is not None else None
    task, meta = checkpoint.spec.task, checkpoint.meta
    metric, higher = primary_metric(task)
    if examples and not config.int8_batch_independent:  # else every node is weight-only
        scored = {item.role: item for item in fp32 if item.role not in SCORED_AS}

        def score(graphs: dict[str, onnx.ModelProto]) -> float:
            # The worse of padded batches and each example alone: an integer kernel takes its
            # input scale from the whole call (int8.py), so a node can cost more in one mode.
            files = [replace(scored[role], proto=proto) for role, proto in graphs.items()]
            batched = _metrics(checkpoint, files, examples, config)[metric]
            with tempfile.TemporaryDirectory() as temp:
                entries = [write_graph(Path(temp), item, config) for item in files]
                runtime = Runtime(temp, "fp32", manifest=_manifest(checkpoint, entries))
                batches = iterate_batches(examples, task, 1)
                alone = TASKS[task].evaluate(OnnxModel(runtime), batches, meta)[metric]
            return min(batched, alone) if higher else max(batched, alone)

        graphs = {role: item.proto for role, item in scored.items()}
        drops = int8_sensitivity(graphs, score, metric, config.per_channel)
        measured_on = f"{SENSITIVITY_SPLIT} split of {data or checkpoint.meta.source}"
    unit = drop_unit(metric)
    plans = {}
    for item in fp32:
        measured = drops.get(SCORED_AS.get(item.role, item.role), {})
        weight_only = {
            node.name: "ONNX Runtime has no integer kernel for it"
            for node in item.proto.graph.node
            if node.op_type in WEIGHT_ONLY_OPS
        }
        for node, drop in measured.items():
            if drop > config.int8_tolerance:
                why = f"its integer kernel alone costs {drop:.3g} {unit} {metric} (worst of "
                why += "padded batches and batch 1)"
                weight_only[node] = f"{why} (max {config.int8_tolerance:g})"
        if config.int8_batch_independent:
            for node in integer_nodes(item.proto):
                weight_only[node] = "int8_batch_independent: results may not depend on the batch"
        plans[item.role] = {
            "integer": sorted(set(integer_nodes(item.proto)) - set(weight_only)),
            "weight_only": weight_only,
            "sensitivity": measured,
            "tolerance": config.int8_tolerance if measured_on else None,
            "measured_on": measured_on,
        }
    return plans, examples


def _metrics(
    checkpoint: Checkpoint, files: list[GraphFile], examples: list, config: ExportConfig
) -> dict[str, float]:
    # Through a throwaway bundle, so the graphs run exactly as edgernn.runtime runs them.
    with tempfile.TemporaryDirectory() as temp:
        entries = [write_graph(Path(temp), item, config) for item in files]
        manifest = _manifest(checkpoint, entries)
        return runtime_metrics(checkpoint, Runtime(temp, "fp32", manifest=manifest), examples)


def _file_order(item: GraphFile) -> tuple[int, int]:
    return ROLES.index(item.role), item.precision == "int8"


def _values(values) -> list[dict]:
    described = []
    for value in values:
        tensor = value.type.tensor_type
        shape = [dim.dim_param or dim.dim_value for dim in tensor.shape.dim]
        described.append({"name": value.name, "dtype": DTYPES[tensor.elem_type], "shape": shape})
    return described


def write_graph(out_dir: Path, item: GraphFile, config: ExportConfig) -> dict:
    """Write one graph atomically; return its manifest entry (hash, I/O, states, parity,
    and what ONNX Runtime it needs: ``ops``, ``min_onnxruntime``)."""
    data = item.proto.SerializeToString()
    write_atomic(out_dir / item.path, data)
    # fp32 graphs are held to a bound (the step graph against the full graph, chunk by
    # chunk); int8 differences are only recorded: the test-split metric judges them.
    tolerance = STREAM_TOLERANCE if item.role == "step" else config.tolerance
    full = "model.int8.onnx" if item.precision == "int8" else "model.onnx"
    against = f"{full}, chunk by chunk" if item.role == "step" else "pytorch"
    return {
        "path": item.path,
        "role": item.role,
        "precision": item.precision,
        "sha256": sha256_bytes(data),
        "size_bytes": len(data),
        "exporter": item.exporter,
        "derived_from": item.derived_from,  # the step graph with a zero initial state
        "opset": OPSET,
        **graph_requirements(item.proto),  # read from the graph's nodes and opset imports
        "inputs": _values(item.proto.graph.input),
        "outputs": _values(item.proto.graph.output),
        "states": item.states,
        "parity": {
            "against": against,
            "max_abs_diff": item.parity,
            "tolerance": tolerance if item.precision == "fp32" else None,
        },
    } | ({"quantization": item.quantization} if item.quantization is not None else {})


def _manifest(checkpoint: Checkpoint, entries: list[dict]) -> dict:
    spec, meta = checkpoint.spec, checkpoint.meta
    numeric = spec.input_size > 0
    tokenization = None if numeric else (meta.tokens or "pretokenized")
    return {
        "format": FORMAT,
        "version": VERSION,
        "task": spec.task,
        "model": spec.to_dict(),
        "input": {
            "type": "features" if numeric else "tokens",
            "tokenization": tokenization,
            # The rules as trained (their Unicode version too); legacy ones for older checkpoints.
            "text": None if numeric else (meta.text or meta.text_rules().to_manifest()),
            "features": spec.input_size,
            "max_len": spec.max_len,
        },
        "special_tokens": {token: index for index, token in enumerate(SPECIALS)},
        "vocab": meta.vocab,
        "target_vocab": meta.tgt_vocab,
        "labels": meta.labels,
        "normalization": meta.norm,
        "files": entries,
        "metrics": {},
        "opset": OPSET,
        "versions": versions(),
    }


def versions() -> dict[str, str]:
    """The library versions a bundle records."""
    import onnxscript

    return {
        "edgernn": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxscript": onnxscript.__version__,
        "python": platform.python_version(),
    }
