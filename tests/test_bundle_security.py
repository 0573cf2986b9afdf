"""A bundle is checked before use: one test per way of tampering with it.

Each test damages a fresh copy of one real bundle and expects a one-line ``EdgeRNNError``
naming the problem; a few positive controls show the checks do not refuse valid bundles.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from export_cases import bundle

from edgernn.bundle import manifest as bundle_module
from edgernn.bundle.manifest import MANIFEST, read_file, read_manifest, sha256_bytes
from edgernn.cli import main
from edgernn.errors import EdgeRNNError
from edgernn.runtime import Runtime


@pytest.fixture(scope="module")
def source() -> Path:
    return bundle("classify", "gru", False)[0]


@pytest.fixture
def copy(source, tmp_path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "bundle"))


def _manifest(directory: Path) -> dict:
    return json.loads((directory / MANIFEST).read_text())


def _edit(directory: Path, change) -> None:
    manifest = _manifest(directory)
    change(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest))


def _refused(directory: Path, fragment: str, **options) -> str:
    with pytest.raises(EdgeRNNError, match=fragment) as caught:
        Runtime(directory, **options)
    message = str(caught.value)
    assert "\n" not in message
    return message


def _outside(tmp_path: Path, name: str = "model.onnx") -> Path:
    """A folder beside the bundle holding a valid copy of one of its files."""
    folder = tmp_path / "outside"
    folder.mkdir(exist_ok=True)
    shutil.copy(tmp_path / "bundle" / name, folder / name)
    return folder


def test_the_untouched_copy_loads(copy):
    assert Runtime(copy, "fp32").predict(["abc"])[0]["label"] in ("neg", "neu", "pos")


def test_a_changed_byte_is_refused_by_its_sha256(copy):
    data = bytearray((copy / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the hash can tell
    (copy / "model.onnx").write_bytes(bytes(data))
    _refused(copy, "model.onnx does not match its sha256")


def test_a_missing_file_is_refused(copy):
    (copy / "step.int8.onnx").unlink()
    _refused(copy, "step.int8.onnx is missing")


@pytest.mark.parametrize("path", ["../outside/model.onnx", "sub/../../outside/model.onnx"])
def test_a_parent_path_is_refused(copy, tmp_path, path):
    _outside(tmp_path)  # the target exists with the right hash: only the path is wrong
    _edit(copy, lambda m: m["files"][0].update(path=path))
    _refused(copy, r"files\[0\].path must be a relative path .*outside the bundle")


def test_an_absolute_path_is_refused(copy, tmp_path):
    target = _outside(tmp_path) / "model.onnx"
    _edit(copy, lambda m: m["files"][0].update(path=str(target)))
    _refused(copy, r"files\[0\].path must be a relative path")


@pytest.mark.parametrize("name", ["../outside/model.onnx", "/etc/hostname", "a\x00b"])
def test_read_file_refuses_escapes_even_without_the_schema(copy, tmp_path, name):
    _outside(tmp_path)
    entry = _manifest(copy)["files"][0] | {"path": name}
    with pytest.raises(EdgeRNNError, match="outside the bundle|relative to the bundle"):
        read_file(copy, entry)


def test_an_unreadable_path_is_refused(copy):
    _edit(copy, lambda m: m["files"][0].update(path="a" * 300))  # longer than a name can be
    _refused(copy, "cannot read 'aaa.*File name too long")


def test_a_symlinked_file_outside_is_refused(copy, tmp_path):
    target = _outside(tmp_path) / "model.onnx"
    (copy / "model.onnx").unlink()
    (copy / "model.onnx").symlink_to(target)
    _refused(copy, "'model.onnx' points outside the bundle")


def test_a_symlinked_folder_outside_is_refused(copy, tmp_path):
    folder = _outside(tmp_path)
    (copy / "graphs").symlink_to(folder, target_is_directory=True)
    _edit(copy, lambda m: m["files"][0].update(path="graphs/model.onnx"))
    _refused(copy, "'graphs/model.onnx' points outside the bundle")


def test_a_symlink_inside_the_bundle_is_followed(copy):
    (copy / "alias.onnx").symlink_to("model.onnx")
    _edit(copy, lambda m: m["files"][0].update(path="alias.onnx"))
    assert Runtime(copy, "fp32").roles == ["model", "step"]


def test_a_symlinked_manifest_is_refused(copy, tmp_path):
    real = tmp_path / "elsewhere.json"
    (copy / MANIFEST).rename(real)
    (copy / MANIFEST).symlink_to(real)
    _refused(copy, "manifest.json: is a symbolic link")


def test_an_oversized_manifest_is_refused(copy):
    with open(copy / MANIFEST, "r+b") as file:  # sparse: cheap to make, costly to parse
        file.truncate(bundle_module.MAX_MANIFEST_BYTES + 1)
    _refused(copy, "larger than 67,108,864 bytes")


def test_a_deeply_nested_manifest_is_refused(copy):
    (copy / MANIFEST).write_text("[" * 100_000 + "]" * 100_000)
    _refused(copy, "corrupt manifest")


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda m: m.update(task="translate"), "field task must be one of"),
        (lambda m: m.pop("task"), "field task must be one of"),
        (lambda m: m.update(files=[]), "field files must be a non-empty list"),
        (lambda m: m["files"].__setitem__(0, "model.onnx"), r"files\[0\] must be an object"),
        (lambda m: m["files"][1].update(sha256="abc"), r"files\[1\].sha256 must be 64"),
        (lambda m: m["files"][1].update(sha256=m["files"][1]["sha256"].upper()), r"\.sha256"),
        (lambda m: m["files"][0].update(path="\ud800.onnx"), r"files\[0\].path must be"),
        (lambda m: m["files"][0].update(precision="fp16"), r"files\[0\].precision"),
        (lambda m: m["files"][0].update(role="teacher"), r"files\[0\].role"),
        (lambda m: m["files"][0]["inputs"][0].update(dtype="float16"), r"inputs\[0\].dtype"),
        (lambda m: m["files"][0]["inputs"][0].update(shape=["batch", 1.5]), r"inputs\[0\].shape"),
        (lambda m: m["files"][0]["inputs"][0].update(dtype="float32"), r"inputs\[0\] must be"),
        (lambda m: m["files"][0].pop("outputs"), r"files\[0\].outputs must be a non-empty"),
        (lambda m: m["files"][2]["states"][0].update(input="nope"), r"states\[0\].input"),
        (lambda m: m["files"][2]["states"][0].update(shape=[2, 8]), r"states\[0\].shape"),
        (lambda m: m["files"][2].update(states=[]), r"files\[2\].inputs must be named"),
        (lambda m: m.update(vocab=[0, 1, 2, 3, 4, 5]), "field vocab must be a list of strings"),
        (lambda m: m.update(vocab=["<pad>", "<unk>"]), "field vocab must be a list of at least 5"),
        (lambda m: m.update(labels=None), "field labels must be"),
        (lambda m: m.update(labels=["neg", "pos"]), r"files\[0\].outputs\[0\].shape"),
        (lambda m: m["input"].update(max_len=0), "field input.max_len must be a positive"),
        (lambda m: m["input"].update(max_len="512"), "field input.max_len"),
        (lambda m: m["input"].update(max_len=True), "field input.max_len"),
        (lambda m: m["input"].update(tokenization="bpe"), "field input.tokenization"),
        (lambda m: m.pop("input"), "field input must be an object"),
        (lambda m: m.update(version=True), "version must be a positive integer"),
    ],
)
def test_schema_errors_name_the_manifest_and_the_field(copy, change, field):
    _edit(copy, change)
    with pytest.raises(EdgeRNNError, match=field) as caught:
        read_manifest(copy)
    assert str(caught.value).startswith(f"{copy / MANIFEST}: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "task, change, field",
    [
        ("regress", lambda m: m["normalization"].update(x_std=[1.0, 0.0, 1.0]), "x_std"),
        (
            "regress",
            lambda m: m["normalization"].update(x_mean=[0.5]),
            "x_mean must be a list of 3",
        ),
        ("regress", lambda m: m["normalization"].update(y_mean=[float("nan"), 1.0]), "y_mean"),
        ("regress", lambda m: m["normalization"].pop("y_std"), "normalization.y_std"),
        ("regress", lambda m: m.update(normalization=None), "field normalization must be"),
        ("regress", lambda m: m["input"].update(features=0), "field input.features"),
        ("seq2seq", lambda m: m.update(target_vocab=None), "field target_vocab"),
        ("seq2seq", lambda m: m["files"][0]["outputs"].pop(0), r"files\[0\].outputs must"),
        ("seq2seq", lambda m: m["files"].pop(0), r"field files must be a list with fp32 graphs"),
        ("lm", lambda m: m["input"].update(type="features"), "field input.type"),
    ],
)
def test_schema_errors_of_other_tasks(tmp_path, task, change, field):
    source = bundle(task, "gru", False, "luong" if task == "seq2seq" else None, "torchscript")[0]
    manifest = json.loads((source / MANIFEST).read_text())
    change(manifest)
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))  # read_manifest opens no graph
    with pytest.raises(EdgeRNNError, match=field):
        read_manifest(tmp_path)


def test_a_newer_version_is_refused(copy):
    newer = bundle_module.VERSION + 1
    _edit(copy, lambda m: m.update(version=newer))
    _refused(copy, f"version {newer} is newer than this edgernn reads")


def test_another_format_is_refused(copy):
    _edit(copy, lambda m: m.update(format="onnx.bundle"))
    _refused(copy, "not an edgernn bundle manifest")


def _replace_graph(directory: Path, name: str, data: bytes) -> None:
    (directory / name).write_bytes(data)

    def rehash(manifest):  # what a careless or hostile edit would do: the hash is valid
        entry = next(e for e in manifest["files"] if e["path"] == name)
        entry.update(sha256=sha256_bytes(data), size_bytes=len(data))

    _edit(directory, rehash)


def test_a_swapped_graph_with_a_valid_hash_is_refused(copy):
    _replace_graph(copy, "model.onnx", (copy / "step.onnx").read_bytes())
    _refused(copy, "model.onnx: the graph's inputs .* differ from the manifest's", precision="fp32")


def test_a_renamed_graph_output_with_a_valid_hash_is_refused(copy):
    proto = onnx.load(copy / "model.onnx")
    for node in proto.graph.node:
        node.output[:] = ["scores" if out == "logits" else out for out in node.output]
    proto.graph.output[0].name = "scores"
    _replace_graph(copy, "model.onnx", proto.SerializeToString())
    _refused(copy, r"graph's outputs \[scores:float32", precision="fp32")


def test_a_duplicate_path_is_refused(copy):
    _edit(copy, lambda m: m["files"].append(dict(m["files"][0])))
    _refused(copy, r"files\[4\].path must be unique")


def test_a_second_graph_for_one_role_is_refused(copy):
    shutil.copy(copy / "model.onnx", copy / "other.onnx")
    _edit(copy, lambda m: m["files"].append(m["files"][0] | {"path": "other.onnx"}))
    _refused(copy, r"files\[4\].role must be unique per precision")


def _make_custom(directory: Path) -> None:
    def change(manifest):
        manifest.update(task="custom", vocab=None, labels=None, normalization=None)
        manifest["input"] = {"type": "tensors", "tokenization": None, "max_len": None}
        manifest["files"] = [e for e in manifest["files"] if e["role"] == "model"]

    _edit(directory, change)


def test_a_custom_bundle_runs_and_refuses_the_task_methods(copy):
    _make_custom(copy)
    runtime = Runtime(copy)
    feeds = {"inputs": np.array([[4, 5, 6]]), "lengths": np.array([3])}
    assert runtime.run("model", feeds)["logits"].shape == (1, 3)
    calls = [
        lambda: runtime.predict(["abc"]),
        lambda: runtime.step("abc"),
        lambda: runtime.generate("abc"),
        lambda: runtime.translate(["abc"]),
    ]
    for call in calls:
        with pytest.raises(EdgeRNNError, match=r"custom model \(task 'custom'\); call run"):
            call()
    result = CliRunner().invoke(main, ["predict", str(copy), "abc"])
    assert result.exit_code == 1 and "a custom model takes arrays" in result.output


def _flip_a_byte(directory: Path) -> None:
    data = bytearray((directory / "step.int8.onnx").read_bytes())
    data[-1] ^= 1
    (directory / "step.int8.onnx").write_bytes(bytes(data))


def _link_manifest(directory: Path) -> None:
    (directory / MANIFEST).rename(directory.parent / "real.json")
    (directory / MANIFEST).symlink_to(directory.parent / "real.json")


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (_flip_a_byte, "step.int8.onnx does not match its sha256"),
        (_link_manifest, "is a symbolic link"),
        (lambda d: _edit(d, lambda m: m["files"][0].update(path="../x.onnx")), "files[0].path"),
        (lambda d: _edit(d, lambda m: m.update(labels=7)), "field labels"),
    ],
)
def test_cli_predict_on_a_tampered_bundle_prints_one_error_line(copy, damage, fragment):
    damage(copy)
    result = CliRunner().invoke(main, ["predict", str(copy), "abc"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, EdgeRNNError)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0]


def test_a_file_that_is_a_directory_or_fifo_is_missing(copy):
    (copy / "model.onnx").unlink()
    os.mkfifo(copy / "model.onnx")  # reading a FIFO would block forever
    _refused(copy, "model.onnx is missing")
