"""Refuse ONNX models that keep tensor data in other files (ONNX "external data").

A ``TensorProto`` with ``data_location = EXTERNAL`` names a file in its ``external_data``
(``location``) that ONNX Runtime opens while it builds the session: beside the model when it
loads a path, in the process's working directory when it loads bytes. No sha256 covers that
file, so whatever lies there under that name changes the model's answers. Every graph edgernn
hands to ONNX Runtime is scanned first and refused if any tensor anywhere in it is external:
initializers, sparse initializers, node attributes (Constant ``value``, ``t``, ``tensors``,
``sparse_tensor(s)``), subgraphs (If/Loop/Scan ``g``/``graphs``), model-local functions
(nodes and attribute defaults) and training graphs.

Why hand-written: the device runtime ships numpy and onnxruntime only, without the ``onnx``
package, and onnx's own ``external_data_helper`` skips sparse tensors. The scan reads the
protobuf wire format directly, descending only into the message fields that can hold a
tensor. It is iterative (no recursion) and bounded: at most ``MAX_DEPTH`` nested messages and
``MAX_FIELDS`` fields in all; past either bound, or on bytes that are not well-formed
protobuf, the model is refused (never skipped) with one ``EdgeRNNError`` line.

Field numbers are those of ``onnx.proto`` (proto2; unchanged since the fields were added).
"""

from __future__ import annotations

from typing import NamedTuple

from edgernn.errors import EdgeRNNError

MAX_DEPTH = 100  # nested messages; protobuf's own parser stops at 100 by default
MAX_FIELDS = 10_000_000  # fields of all scanned messages (~15 s); an RNN graph has thousands
RESAVE = "onnx.save(model, path, save_as_external_data=False)"

# Message kinds, and the fields of each that hold a message that can contain a tensor:
# field number -> (kind of the field's message, its name in onnx.proto, repeated?).
_MODEL, _TRAINING, _FUNCTION, _GRAPH, _NODE, _ATTRIBUTE, _SPARSE, _TENSOR = range(8)
_CHILDREN: dict[int, dict[int, tuple[int, str, bool]]] = {
    _MODEL: {
        7: (_GRAPH, "graph", False),
        20: (_TRAINING, "training_info", True),
        25: (_FUNCTION, "functions", True),
    },
    _TRAINING: {1: (_GRAPH, "initialization", False), 2: (_GRAPH, "algorithm", False)},
    _FUNCTION: {7: (_NODE, "node", True), 11: (_ATTRIBUTE, "attribute_proto", True)},
    _GRAPH: {
        1: (_NODE, "node", True),
        5: (_TENSOR, "initializer", True),
        15: (_SPARSE, "sparse_initializer", True),
    },
    _NODE: {5: (_ATTRIBUTE, "attribute", True)},
    _ATTRIBUTE: {
        5: (_TENSOR, "t", False),
        6: (_GRAPH, "g", False),
        10: (_TENSOR, "tensors", True),
        11: (_GRAPH, "graphs", True),
        22: (_SPARSE, "sparse_tensor", False),
        23: (_SPARSE, "sparse_tensors", True),
    },
    _SPARSE: {1: (_TENSOR, "values", False), 2: (_TENSOR, "indices", False)},
    _TENSOR: {},
}
_TENSOR_NAME, _EXTERNAL_DATA, _DATA_LOCATION = 8, 13, 14  # TensorProto fields
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5  # wire types (3, 4: groups, never in ONNX)


class ExternalTensor(NamedTuple):
    """A tensor whose data is in another file."""

    name: str  # TensorProto.name ("" if it has none)
    path: str  # where it sits, in onnx.proto field names: "graph.node[2].attribute[0].t"
    location: str | None  # the file its external_data names, if it names one


class _Malformed(Exception):
    """Bytes that are not a well-formed ONNX protobuf (or exceed the scan's bounds)."""


def check_self_contained(data: bytes, where: str) -> None:
    """Refuse an ONNX model (serialized bytes) any of whose tensors lives in another file.

    Args:
        data: the ``.onnx`` file's bytes, as they will be given to ONNX Runtime.
        where: the file, for the message.

    Raises:
        EdgeRNNError: a tensor has external data (one line naming the file, the tensor and
            how to re-save the model), or ``data`` is not a readable ONNX file.

    Example::

        check_self_contained(Path("model.onnx").read_bytes(), "model.onnx")
    """
    found = external_tensors(data, where)
    if found:
        first = found[0]
        name = repr(first.name[:100]) if first.name else "(unnamed)"
        location = f" {first.location[:100]!r}" if first.location is not None else ""
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise EdgeRNNError(
            f"{where}: tensor {name} ({first.path}){more} keeps its data in an external "
            f"file{location} that ONNX Runtime would read unverified; re-save the model with "
            f"all tensors inside the file: {RESAVE}"
        )


def external_tensors(data: bytes, where: str = "ONNX model") -> list[ExternalTensor]:
    """Every tensor of the serialized ONNX model ``data`` that keeps its data elsewhere.

    A tensor counts as external if it sets ``data_location`` to EXTERNAL or has any
    ``external_data`` entry (ONNX Runtime reads only the former; neither belongs in a
    self-contained file). Results are in file order.

    Raises:
        EdgeRNNError: ``data`` is not well-formed protobuf, is an ORT-format model, nests
            messages deeper than ``MAX_DEPTH`` or has more than ``MAX_FIELDS`` fields.
    """
    data = bytes(data)
    if data[4:8] == b"ORTM":  # ONNX Runtime's own flatbuffers format; this scan reads ONNX
        raise EdgeRNNError(f"{where}: an ORT-format model, not an ONNX file; use the .onnx model")
    try:
        return _scan(data)
    except _Malformed as error:
        raise EdgeRNNError(f"{where}: not a readable ONNX file ({error})") from None


def _scan(data: bytes) -> list[ExternalTensor]:
    # Depth-first over message spans: a message is scanned whole, pushing the spans of its
    # tensor-bearing fields and skipping the rest, so each byte is read once.
    pending = [(_MODEL, 0, len(data), 0, "")]  # kind, start, end, depth, path
    found: list[tuple[int, ExternalTensor]] = []
    budget = [MAX_FIELDS]
    while pending:
        kind, start, end, depth, path = pending.pop()
        if depth > MAX_DEPTH:
            raise _Malformed(f"messages nested more than {MAX_DEPTH} deep at byte {start}")
        if kind == _TENSOR:
            tensor = _tensor(data, start, end, path, budget)
            if tensor is not None:
                found.append((start, tensor))
            continue
        children, counts = _CHILDREN[kind], {}
        for number, wire, value_start, value_end in _fields(data, start, end, budget):
            if number in children and wire == _LEN:  # another wire type: protobuf skips it
                child, name, repeated = children[number]
                index = counts[number] = counts.get(number, -1) + 1
                label = f"{name}[{index}]" if repeated else name
                pending.append((child, value_start, value_end, depth + 1, f"{path}.{label}"))
    return [tensor for _, tensor in sorted(found, key=lambda item: item[0])]


def _tensor(
    data: bytes, start: int, end: int, path: str, budget: list[int]
) -> ExternalTensor | None:
    name, location, external = "", None, False
    for number, wire, value_start, value_end in _fields(data, start, end, budget):
        if number == _TENSOR_NAME and wire == _LEN:
            name = data[value_start:value_end].decode("utf-8", "replace")
        elif number == _EXTERNAL_DATA and wire == _LEN:
            external = True
            location = _entry(data, value_start, value_end, budget, location)
        elif number == _DATA_LOCATION and wire == _VARINT:
            external |= _varint(data, value_start, value_end)[0] == _EXTERNAL
    return ExternalTensor(name, path.lstrip("."), location) if external else None


def _entry(
    data: bytes, start: int, end: int, budget: list[int], location: str | None
) -> str | None:
    # StringStringEntryProto: key = 1, value = 2; keep the value of the "location" key.
    key = value = None
    for number, wire, value_start, value_end in _fields(data, start, end, budget):
        if wire == _LEN and number in (1, 2):
            text = data[value_start:value_end].decode("utf-8", "replace")
            key, value = (text, value) if number == 1 else (key, text)
    return value if key == "location" else location


def _fields(data: bytes, pos: int, end: int, budget: list[int]):
    """Yield ``(field number, wire type, value start, value end)`` for one message."""
    while pos < end:
        budget[0] -= 1
        if budget[0] < 0:
            raise _Malformed(f"more than {MAX_FIELDS:,} protobuf fields to check")
        tag, pos = _varint(data, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise _Malformed(f"field number 0 at byte {pos}")
        if wire == _VARINT:
            value_start, pos = pos, _varint(data, pos, end)[1]
        elif wire in (_FIXED64, _FIXED32):
            value_start, pos = pos, pos + (8 if wire == _FIXED64 else 4)
        elif wire == _LEN:
            size, value_start = _varint(data, pos, end)
            pos = value_start + size
        else:
            raise _Malformed(f"wire type {wire} at byte {pos}")
        if pos > end:
            raise _Malformed(f"a field runs past the end of its message at byte {value_start}")
        yield number, wire, value_start, pos


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while shift < 70:  # ten bytes at most
        if pos >= end:
            raise _Malformed(f"truncated at byte {pos}")
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return result, pos
        shift += 7
    raise _Malformed(f"a varint longer than 10 bytes at byte {pos}")
