"""What ONNX Runtime a graph needs: its operator sets and the oldest release that runs it.

Every bundle file entry records, computed from the graph itself (``graph_requirements``):

- ``ops``: the standard opset the graph imports (``"ai.onnx": 18``) and, per other domain,
  the operators its nodes use from it (``"com.microsoft": ["DynamicQuantizeLSTM"]``; an fp32
  graph has none), so a reduced-operator ORT build knows what to include;
- ``min_onnxruntime``: the oldest ONNX Runtime release that implements all of it, from the
  tables below; the manifest's top level holds the highest over its files
  (``bundle_min_onnxruntime``).

The tables hold release facts, not measurements; a graph is verified only on the installed
ORT. An opset or contrib op missing from them gets the installed release (the one the export
was verified on): conservative, never an unchecked older claim.
"""

from __future__ import annotations

import onnx
import onnxruntime

STANDARD = "ai.onnx"  # the domain a node with domain "" belongs to
# The ORT release that first implemented each ai.onnx opset: the version matrix of
# onnxruntime docs/Versioning.md (1.14 implements ONNX 1.13, opset 18; 1.15 ONNX 1.14,
# opset 19; 1.17 ONNX 1.15, opset 20; 1.18 ONNX 1.16, opset 21).
OPSET_SINCE = {17: "1.12", 18: "1.14", 19: "1.15", 20: "1.17", 21: "1.18"}
# The ORT release that introduced each contrib op an edgernn int8 graph can hold (the CPU
# kernel, in every standard build). DynamicQuantizeLSTM: microsoft/onnxruntime#5595, released
# in 1.6 (issue #5747). The int8 MatMuls are standard ops (DynamicQuantizeLinear, opset 11;
# MatMulInteger, opset 10), covered by the opset. DynamicQuantizeMatMul is not listed: no graph
# uses it, and no release that introduced its CPU kernel was found; it would get the fallback.
# GatherBlockQuantized (4-bit embedding tables, edgernn.export.int4): CPU kernel in
# microsoft/onnxruntime#21630, first released in 1.20; checked on the wheels: 1.19.2 has no
# such op, 1.20.1 runs edgernn's uint4 tables exactly (their IR version 10 needs 1.18).
CONTRIB_SINCE = {
    ("com.microsoft", "DynamicQuantizeLSTM"): "1.6",
    ("com.microsoft", "GatherBlockQuantized"): "1.20",
}


def graph_requirements(proto: onnx.ModelProto) -> dict:
    """``{"ops": ..., "min_onnxruntime": ...}`` of one graph, for its manifest entry.

    Example::

        graph_requirements(onnx.load("model.int8.onnx"))
        # {"ops": {"ai.onnx": 18, "com.microsoft": ["DynamicQuantizeLSTM"]},
        #  "min_onnxruntime": "1.14"}
    """
    ops = operator_sets(proto)
    needed = [_opset_since(ops[STANDARD])] if STANDARD in ops else []
    needed += [
        CONTRIB_SINCE.get((domain, op), installed_release())
        for domain, names in ops.items()
        if domain != STANDARD
        for op in names
    ]
    return {"ops": ops, "min_onnxruntime": highest(needed or [installed_release()])}


def operator_sets(proto: onnx.ModelProto) -> dict:
    """The imported ai.onnx opset, then each other domain's operators the nodes use, sorted.

    Nodes inside subgraphs (If/Loop/Scan bodies) and model-local functions count too: ORT
    needs their kernels as much as the top graph's.
    """
    imported = {entry.domain or STANDARD: entry.version for entry in proto.opset_import}
    local = {(function.domain, function.name) for function in proto.functions}
    used: dict[str, set[str]] = {}
    for node in _all_nodes(proto):
        domain = node.domain or STANDARD
        if domain != STANDARD and (node.domain, node.op_type) not in local:
            used.setdefault(domain, set()).add(node.op_type)
    ops: dict = {STANDARD: imported[STANDARD]} if STANDARD in imported else {}
    return ops | {domain: sorted(names) for domain, names in sorted(used.items())}


def bundle_min_onnxruntime(entries: list[dict]) -> str:
    """The highest ``min_onnxruntime`` of a bundle's file entries (the manifest's own)."""
    return highest([entry["min_onnxruntime"] for entry in entries])


def highest(versions: list[str]) -> str:
    """The latest of ``"major.minor"`` release strings."""
    return max(versions, key=release_key)


def release_key(version: str) -> tuple[int, ...]:
    """``"1.14"`` -> ``(1, 14)``: release strings compared as numbers, not text."""
    return tuple(int(part) for part in version.split("."))


def installed_release() -> str:
    """The installed ORT as ``major.minor`` (``1.32.0`` and ``1.32.0.dev`` -> ``1.32``)."""
    return ".".join(onnxruntime.__version__.split(".")[:2])


def _opset_since(version: int) -> str:
    if version in OPSET_SINCE:
        return OPSET_SINCE[version]
    # Older opsets run on every release the table lists; newer ones only where verified.
    return OPSET_SINCE[min(OPSET_SINCE)] if version < min(OPSET_SINCE) else installed_release()


def _all_nodes(proto: onnx.ModelProto) -> list[onnx.NodeProto]:
    pending = [list(proto.graph.node), *(list(function.node) for function in proto.functions)]
    nodes = []
    while pending:
        for node in pending.pop():
            nodes.append(node)
            for attr in node.attribute:  # If/Loop/Scan bodies
                pending += [list(attr.g.node)] if attr.HasField("g") else []
                pending += [list(graph.node) for graph in attr.graphs]
    return nodes
