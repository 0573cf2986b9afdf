"""The external-data scan (``edgernn.bundle.external``) against onnx's own view of a model.

A model with a tensor in every place one can sit (initializers, sparse initializers, node
attributes, If/Loop/Scan subgraphs, functions, training graphs) and the real graphs of a
bundle: the scan finds exactly the tensors that ``onnx.external_data_helper`` calls external.
Malformed, truncated or too deeply nested bytes give one ``EdgeRNNError`` line, nothing else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from export_cases import bundle
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import uses_external_data

from edgernn.bundle import external
from edgernn.bundle.external import check_self_contained, external_tensors
from edgernn.errors import EdgeRNNError


@pytest.fixture(scope="module")
def source() -> Path:
    return bundle("classify", "gru", False)[0]


def externalize(tensor: TensorProto, location: str = "secret.bin") -> bytes:
    """Move ``tensor``'s data out of the model, as ``onnx.save(save_as_external_data)``."""
    data = numpy_helper.to_array(tensor).tobytes()
    for field in ("raw_data", "float_data", "int64_data", "int32_data", "double_data"):
        tensor.ClearField(field)
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(data)))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return data


def _tensor(name: str) -> TensorProto:
    return numpy_helper.from_array(np.arange(3, dtype=np.float32), name)


def _sparse(name: str) -> onnx.SparseTensorProto:
    indices = numpy_helper.from_array(np.array([0], dtype=np.int64), f"{name}.indices")
    return helper.make_sparse_tensor(_tensor(f"{name}.values"), indices, [5])


def _graph(name: str, nodes=(), initializers=()) -> onnx.GraphProto:
    out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [3])
    return helper.make_graph(list(nodes), name, [], [out], list(initializers))


def _constant(name: str) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [f"{name}_out"], value=_tensor(name))


def _every_place() -> onnx.ModelProto:
    deep = _graph("deep", [_constant("deep_const")])  # Loop > Scan > If > Constant
    scan_body = _graph("scan", [helper.make_node("If", ["c"], ["o"], then_branch=deep)])
    scan = helper.make_node("Scan", [], ["z"], body=scan_body, num_scan_inputs=0)
    listed = _graph("listed", initializers=[_tensor("gs_init")])
    tensors = [_tensor("list_a"), _tensor("list_b")]
    nodes = [
        _constant("const_t"),
        helper.make_node("Constant", [], ["s"], sparse_value=_sparse("const_sparse")),
        helper.make_node("Mix", [], ["m"], domain="test", ts=tensors),
        helper.make_node("Mix", [], ["n"], domain="test", sps=[_sparse("list_sparse")]),
        helper.make_node(
            "If",
            ["c"],
            ["i"],
            then_branch=_graph("then", initializers=[_tensor("then_init")]),
            else_branch=_graph("else", [_constant("else_const")]),
        ),
        helper.make_node("Mix", [], ["g"], domain="test", gs=[listed]),
        helper.make_node("Loop", ["", "c"], ["l"], body=_graph("loop", [scan])),
    ]
    graph = _graph("main", nodes, [_tensor("init")])
    graph.sparse_initializer.append(_sparse("sparse_init"))
    function = helper.make_function(
        "test", "Fn", [], ["fn_const_out"], [_constant("fn_const")], [helper.make_opsetid("", 18)]
    )
    function.attribute_proto.append(helper.make_attribute("default", _tensor("fn_default")))
    model = helper.make_model(graph, functions=[function])
    training = model.training_info.add()
    training.initialization.CopyFrom(_graph("train", initializers=[_tensor("train_init")]))
    return model


def _all_tensors(model: onnx.ModelProto):
    """Every TensorProto of the model, walked with the onnx API."""

    def sparse(s):
        yield from (s.values, s.indices)

    def graph(g):
        yield from g.initializer
        for s in g.sparse_initializer:
            yield from sparse(s)
        for node in g.node:
            yield from attributes(node.attribute)

    def attributes(items):
        for a in items:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("sparse_tensor"):
                yield from sparse(a.sparse_tensor)
            for s in a.sparse_tensors:
                yield from sparse(s)
            if a.HasField("g"):
                yield from graph(a.g)
            for g in a.graphs:
                yield from graph(g)

    yield from graph(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from attributes(node.attribute)
        yield from attributes(function.attribute_proto)
    for training in model.training_info:
        yield from graph(training.initialization)
        yield from graph(training.algorithm)


def _onnx_view(model: onnx.ModelProto) -> list[str]:
    return sorted(t.name for t in _all_tensors(model) if uses_external_data(t))


def _scanned(model: onnx.ModelProto) -> list[str]:
    return sorted(t.name for t in external_tensors(model.SerializeToString()))


EVERY_NAME = [t.name for t in _all_tensors(_every_place())]


def test_the_model_has_a_tensor_in_every_place():
    assert len(EVERY_NAME) == len(set(EVERY_NAME)) == 17
    assert _scanned(_every_place()) == _onnx_view(_every_place()) == []


@pytest.mark.parametrize("name", EVERY_NAME)
def test_the_scan_finds_an_external_tensor_wherever_it_sits(name):
    model = _every_place()
    externalize(next(t for t in _all_tensors(model) if t.name == name))
    assert _scanned(model) == _onnx_view(model) == [name]


def test_the_scan_finds_them_all_in_file_order_with_their_paths():
    model = _every_place()
    for tensor in _all_tensors(model):
        externalize(tensor, f"{tensor.name}.bin")
    found = external_tensors(model.SerializeToString())
    assert sorted(t.name for t in found) == _onnx_view(model) == sorted(EVERY_NAME)
    assert all(t.location == f"{t.name}.bin" for t in found)
    paths = {t.name: t.path for t in found}
    assert paths["init"] == "graph.initializer[0]"
    assert paths["sparse_init.indices"] == "graph.sparse_initializer[0].indices"
    assert paths["list_b"] == "graph.node[2].attribute[0].tensors[1]"
    assert paths["deep_const"] == (
        "graph.node[6].attribute[0].g.node[0].attribute[0].g.node[0].attribute[0].g.node[0]"
        ".attribute[0].t"
    )
    assert paths["fn_default"] == "functions[0].attribute_proto[0].t"
    assert paths["train_init"] == "training_info[0].initialization.initializer[0]"


def test_the_scan_agrees_with_onnx_on_every_real_graph(source):
    for path in sorted(source.glob("*.onnx")):
        model = onnx.load(path)
        assert _scanned(model) == _onnx_view(model) == []
        for tensor in _all_tensors(model):
            externalize(tensor)
        assert _scanned(model) == _onnx_view(model) != []


def test_external_data_entries_without_the_location_flag_are_refused_too():
    # ONNX Runtime reads only data_location, but no self-contained file has such entries.
    model = _every_place()
    entry = model.graph.initializer[0].external_data.add()
    entry.key, entry.value = "location", "x.bin"
    assert _scanned(model) == ["init"] and _onnx_view(model) == []


# Bounds and malformed bytes: one EdgeRNNError line, never another exception.


def _field(number: int, payload: bytes) -> bytes:
    # A length-delimited protobuf field (wire type 2), as the protobuf encoder writes it.
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def _nested(levels: int) -> bytes:
    # Written by hand: onnx (upb) itself refuses to build messages 100 deep.
    tensor = _tensor("hidden")
    externalize(tensor)
    graph = _field(5, tensor.SerializeToString())  # GraphProto.initializer
    for _ in range(levels):  # graph.node[0].attribute[0].g: three messages per level
        graph = _field(1, _field(5, _field(6, graph)))
    return _field(7, graph)  # ModelProto.graph


def test_nesting_past_the_bound_is_refused_not_skipped():
    (found,) = external_tensors(_nested(32))  # 98 messages deep: scanned
    assert found.name == "hidden" and found.path.count(".g.") == 32
    with pytest.raises(EdgeRNNError, match="not a readable ONNX file .*nested more than 100"):
        check_self_contained(_nested(33), "deep.onnx")


def test_more_fields_than_the_bound_are_refused(source, monkeypatch):
    monkeypatch.setattr(external, "MAX_FIELDS", 100)
    with pytest.raises(EdgeRNNError, match="more than 100 protobuf fields"):
        check_self_contained((source / "model.onnx").read_bytes(), "model.onnx")


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"\x3a\xff", "truncated"),  # graph, length cut off
        (b"\x3a\x05\x2a", "runs past the end"),
        (b"\x3a\x02\x2b\x00", "wire type 3"),
        (b"\x00", "field number 0"),
        (b"\x08" + b"\xff" * 11, "longer than 10 bytes"),
        (b"\x18\x00\x00\x00ORTM" + bytes(8), "ORT-format model"),
    ],
)
def test_malformed_bytes_are_one_error_line(data, reason):
    with pytest.raises(EdgeRNNError, match=reason) as caught:
        check_self_contained(data, "bad.onnx")
    assert str(caught.value).startswith("bad.onnx: ") and "\n" not in str(caught.value)


def _mutations(data: bytes):
    cut = st.integers(0, len(data)).map(lambda n: data[:n])
    flip = st.tuples(st.integers(0, len(data) - 1), st.integers(1, 255)).map(
        lambda f: data[: f[0]] + bytes([data[f[0]] ^ f[1]]) + data[f[0] + 1 :]
    )
    return st.one_of(st.binary(max_size=200), cut, flip)


_FUZZ_SEED = _every_place()
for _t in list(_all_tensors(_FUZZ_SEED))[::3]:
    externalize(_t)


@settings(max_examples=60)
@given(_mutations(_FUZZ_SEED.SerializeToString()))
def test_fuzz_the_scan_raises_only_edgernn_errors_and_misses_nothing(data):
    try:
        found = external_tensors(data)
    except EdgeRNNError as error:
        assert "\n" not in str(error)
        return
    try:
        model = onnx.load_from_string(data)
    except Exception:  # protobuf refuses what the scan let pass: ONNX Runtime would too
        return
    # Never fewer: a field repeated in the bytes is merged by protobuf, counted by the scan.
    assert len(found) >= sum(uses_external_data(t) for t in _all_tensors(model))
