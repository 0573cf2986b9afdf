"""ONNX external data is refused before any ONNX Runtime session is created.

A tensor stored as external data (``data_location = EXTERNAL``, ``location: secret.bin``)
is outside the bytes a bundle's sha256 covers, and ONNX Runtime reads it from the working
directory when the session is built from bytes. The tests tamper with one real bundle,
re-sign its manifest, plant ``secret.bin`` in the working directory, and expect one line;
``test_external_scan.py`` checks the scan itself against onnx's view of every tensor.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from export_cases import bundle
from onnx import TensorProto, helper, numpy_helper
from test_external_scan import externalize

from edgernn.bundle.external import RESAVE
from edgernn.bundle.manifest import MANIFEST, sha256_bytes
from edgernn.cli import main
from edgernn.errors import EdgeRNNError
from edgernn.runtime import Runtime

WEIGHT = "model.head.weight"  # the classifier head of the classify bundle, [3, 8]
FEEDS = {"inputs": np.array([[4, 5, 6]]), "lengths": np.array([3])}


@pytest.fixture(scope="module")
def source() -> Path:
    return bundle("classify", "gru", False)[0]


@pytest.fixture
def copy(source, tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # where ONNX Runtime looks for secret.bin
    return Path(shutil.copytree(source, tmp_path / "bundle"))


def _take_initializer(proto: onnx.ModelProto, name: str) -> TensorProto:
    index = next(i for i, t in enumerate(proto.graph.initializer) if t.name == name)
    tensor = TensorProto()
    tensor.CopyFrom(proto.graph.initializer[index])
    del proto.graph.initializer[index]
    return tensor


def _in_initializer(proto: onnx.ModelProto) -> str:
    index = next(i for i, t in enumerate(proto.graph.initializer) if t.name == WEIGHT)
    externalize(proto.graph.initializer[index])
    return f"graph.initializer[{index}]"


def _in_constant(proto: onnx.ModelProto) -> str:
    tensor = _take_initializer(proto, WEIGHT)
    externalize(tensor)
    proto.graph.node.insert(0, helper.make_node("Constant", [], [WEIGHT], value=tensor))
    return "graph.node[0].attribute[0].t"


def _in_subgraph(proto: onnx.ModelProto) -> str:
    # An If that always takes its then-branch, whose Constant holds the external weight.
    inline = _take_initializer(proto, WEIGHT)
    hidden = TensorProto()
    hidden.CopyFrom(inline)
    externalize(hidden)
    shape = list(inline.dims)

    def branch(name: str, tensor: TensorProto) -> onnx.GraphProto:
        out = helper.make_tensor_value_info(f"{name}_w", TensorProto.FLOAT, shape)
        node = helper.make_node("Constant", [], [f"{name}_w"], value=tensor)
        return helper.make_graph([node], name, [], [out])

    proto.graph.initializer.append(numpy_helper.from_array(np.array(True), "always"))
    node = helper.make_node(
        "If",
        ["always"],
        [WEIGHT],
        then_branch=branch("then", hidden),
        else_branch=branch("else", inline),
    )
    proto.graph.node.insert(0, node)
    return "graph.node[0].attribute[1].g.node[0].attribute[0].t"  # attributes sorted by name


TAMPERINGS = [_in_initializer, _in_constant, _in_subgraph]


def _tamper(directory: Path, change) -> str:
    """Apply ``change`` to model.onnx and re-sign the manifest, as a hostile edit would."""
    proto = onnx.load(directory / "model.onnx")
    where = change(proto)
    data = proto.SerializeToString()
    (directory / "model.onnx").write_bytes(data)
    manifest = json.loads((directory / MANIFEST).read_text())
    entry = next(e for e in manifest["files"] if e["path"] == "model.onnx")
    entry.update(sha256=sha256_bytes(data), size_bytes=len(data))
    (directory / MANIFEST).write_text(json.dumps(manifest))
    return where


def _plant_secret(weight: np.ndarray) -> None:
    Path("secret.bin").write_bytes(weight.astype(np.float32).tobytes())


@pytest.mark.parametrize("change", TAMPERINGS)
def test_onnx_runtime_alone_would_read_the_planted_file(copy, source, change):
    # Why the check exists: unchecked, the answers follow whatever secret.bin holds.
    _tamper(copy, change)
    data = (copy / "model.onnx").read_bytes()
    weight = numpy_helper.to_array(_take_initializer(onnx.load(source / "model.onnx"), WEIGHT))
    answers = []
    for planted in (weight, np.zeros_like(weight)):
        _plant_secret(planted)
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        answers.append(session.run(None, FEEDS)[0])
    want = ort.InferenceSession((source / "model.onnx").read_bytes()).run(None, FEEDS)[0]
    np.testing.assert_allclose(answers[0], want, atol=1e-6)
    assert not np.allclose(answers[1], want, atol=1e-3)


@pytest.mark.parametrize("change", TAMPERINGS)
def test_the_runtime_refuses_a_tensor_in_another_file(copy, change, monkeypatch):
    where = _tamper(copy, change)
    _plant_secret(np.ones((3, 8)))
    created = []
    monkeypatch.setattr(ort, "InferenceSession", lambda *a, **k: created.append(a))
    with pytest.raises(EdgeRNNError) as caught:
        Runtime(copy, "fp32")
    message = str(caught.value)
    assert "\n" not in message and not created  # refused before any session
    assert f"model.onnx: tensor '{WEIGHT}' ({where}) keeps its data in an external file " in (
        message
    )
    assert "'secret.bin'" in message and message.endswith(RESAVE)


def test_an_int8_graph_not_loaded_is_refused_too(copy):
    # Every file is checked, like the sha256: the bundle is refused whole.
    _tamper(copy, _in_initializer)
    with pytest.raises(EdgeRNNError, match="model.onnx: tensor"):
        Runtime(copy, "int8")


def _bench(*args) -> object:
    return CliRunner().invoke(main, ["bench", *map(str, args), "--quiet", "-o", "report"])


def test_cli_bench_refuses_it_in_a_bundle_and_in_a_bare_onnx_file(copy, tmp_path):
    _tamper(copy, _in_initializer)
    _plant_secret(np.ones((3, 8)))
    bare = shutil.copy(copy / "model.onnx", tmp_path / "bare.onnx")
    for target, named in ((copy, f"{copy.resolve()}: model.onnx"), (bare, str(bare))):
        result = _bench(target)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"Error: {named}: tensor '{WEIGHT}' (graph.initializer[")
    assert not (tmp_path / "report").exists()


def test_the_export_check_refuses_it_before_a_session(source):
    from edgernn.export.parity import session

    proto = onnx.load(source / "model.onnx")
    _in_constant(proto)
    with pytest.raises(EdgeRNNError, match=r"exported ONNX graph: tensor .* re-save the model"):
        session(proto)
    assert session(onnx.load(source / "model.onnx")).get_outputs()[0].name == "logits"


@pytest.mark.slow
def test_the_runtime_checks_without_the_onnx_package(copy):
    # Device apps ship numpy + onnxruntime only: the scan must not need onnx.
    clean = shutil.copytree(copy, copy.parent / "clean")
    _tamper(copy, _in_initializer)
    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "from edgernn.runtime import Runtime; from edgernn.errors import EdgeRNNError\n"
        f"assert Runtime({str(clean)!r}).predict(['abc'])[0]['label']\n"
        f"try:\n    Runtime({str(copy)!r})\nexcept EdgeRNNError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert f"tensor '{WEIGHT}'" in out.stdout
