"""Turn command-line paths (checkpoints, ONNX files, bundle directories) into candidates."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgernn.bench.config import Candidate
from edgernn.bench.inputs import assign_axes, check_example
from edgernn.bundle.external import check_self_contained
from edgernn.bundle.manifest import complete_bundle, read_file, read_manifest
from edgernn.errors import EdgeRNNError

# Op types that only appear in quantized graphs (ORT's dynamic and static int8 formats).
INT8_OPS = {
    "DynamicQuantizeLSTM",
    "DynamicQuantizeMatMul",
    "DynamicQuantizeLinear",
    "MatMulInteger",
    "QLinearMatMul",
    "QuantizeLinear",
    "QGemm",
}
CUSTOM_TASK = "custom"  # the manifest task of a bundle exported from a user's own module


def read_bundle(directory: Path) -> tuple[str | None, list[dict]]:
    """The task and the ONNX files of a bundle, verified as the runtime verifies them.

    The manifest passes the bundle schema and every file its sha256 and path checks
    (``edgernn.bundle.manifest``) before anything is loaded or timed.

    Returns:
        ``(task, files)`` with each file ``{"path": absolute path, "role", "precision"}``.
    """
    directory = complete_bundle(directory)  # one folder for the manifest and its files
    manifest = read_manifest(directory)
    files = []
    for entry in manifest["files"]:
        read_file(directory, entry)  # raises on a bad hash, a path out, external data
        path = str(Path(directory).resolve() / entry["path"])
        files.append({"path": path, "role": entry["role"], "precision": entry["precision"]})
    return manifest["task"], files


def candidates_from_paths(
    paths: list[str], device: str = "cpu", example: str | None = None
) -> list[Candidate]:
    """One candidate per runtime and precision each path can run as.

    A checkpoint gives PyTorch fp32 and dynamic int8 (and fp16 on cuda); an ONNX file gives
    one ONNX Runtime candidate at its own precision; a bundle gives one per ONNX file.

    Args:
        paths: checkpoints (``.pt``), ONNX files and bundle directories.
        device: ``cpu`` or ``cuda``.
        example: ``.npz`` inputs for bare ONNX files and custom bundles, keyed by input
            names.

    Example::

        candidates = candidates_from_paths(["teacher.pt", "runs/bundle"], "cpu")
    """
    found: list[Candidate] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise EdgeRNNError(f"{path}: no such file or directory")
        if path.is_dir():
            found += _from_bundle(path, example)
        elif path.suffix == ".pt":
            found += _from_checkpoint(path, device)
        elif path.suffix == ".onnx":
            found.append(_from_onnx(path, "peer", None, None, example))
        else:
            raise EdgeRNNError(
                f"{path}: unknown model file type {path.suffix or '(none)'!r}; bench takes "
                ".pt checkpoints, .onnx files and bundle directories"
            )
    return _unique_names(found)


def _from_checkpoint(path: Path, device: str) -> list[Candidate]:
    from edgernn.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path)
    # A compressed student records its teacher; an adopted own model records only its origin.
    role = "student" if "teacher" in checkpoint.compression else "teacher"
    precisions = ("fp32", "fp16", "int8") if device == "cuda" else ("fp32", "int8")
    return [
        Candidate(f"{path.name} torch {p}", str(path), "torch", p, role, task=checkpoint.spec.task)
        for p in precisions
    ]


def _from_bundle(directory: Path, example: str | None = None) -> list[Candidate]:
    task, files = read_bundle(directory)
    # A custom bundle (a user's own module) has no task metric, and takes the example that
    # fixed its inputs; other bundles make their own inputs and ignore it.
    example = example if task == CUSTOM_TASK else None
    task = None if task == CUSTOM_TASK else task
    return [
        _from_onnx(Path(entry["path"]), "final", task, entry["precision"], example)
        for entry in files
    ]


def _from_onnx(
    path: Path, role: str, task: str | None, precision: str | None, example: str | None
) -> Candidate:
    import onnx

    try:
        data = path.read_bytes()
    except OSError as error:
        raise EdgeRNNError(f"{path}: cannot read it ({error.strerror or error})") from None
    # Before onnx parses it: a tensor in another file would be read unverified by the worker.
    check_self_contained(data, str(path))
    try:
        model = onnx.load_from_string(data)
    except Exception as error:  # protobuf raises several types for a damaged file
        raise EdgeRNNError(f"{path}: not a readable ONNX file ({error})") from None
    if example is not None:
        _check_example_file(path, example, onnx_inputs(model))
    else:
        assign_axes(onnx_inputs(model))  # refuse underivable inputs now, not in a worker
    precision = precision if precision in ("fp32", "fp16", "int8") else onnx_precision(model)
    name = f"{path.parent.name}/{path.name}" if role == "final" else path.name
    return Candidate(f"{name} ort {precision}", str(path), "onnx", precision, role, example, task)


def _check_example_file(path: Path, example: str, inputs: list[dict]) -> None:
    try:
        with np.load(example, allow_pickle=False) as arrays:
            names = frozenset(arrays.files)
    except (OSError, ValueError) as error:
        raise EdgeRNNError(f"--example {example}: not a readable .npz file ({error})") from None
    check_example(inputs, dict.fromkeys(names))
    assign_axes(inputs, names)


def onnx_inputs(model) -> list[dict]:
    """The graph's real inputs (initializers excluded) as ``{"name", "dtype", "shape"}``."""
    from onnx.helper import tensor_dtype_to_np_dtype

    weights = {init.name for init in model.graph.initializer}
    described = []
    for value in model.graph.input:
        if value.name in weights:
            continue
        tensor = value.type.tensor_type
        dims = [_dim(d) for d in tensor.shape.dim]
        try:
            dtype = str(tensor_dtype_to_np_dtype(tensor.elem_type))
        except KeyError:
            dtype = f"onnx type {tensor.elem_type}"
        described.append({"name": value.name, "dtype": dtype, "shape": dims})
    return described


def _dim(dim) -> int | str | None:
    return dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or None)


def onnx_precision(model) -> str:
    """int8 if the graph has quantized ops, fp16 if its weights are half, else fp32."""
    from onnx import TensorProto

    if any(node.op_type in INT8_OPS for node in model.graph.node):
        return "int8"
    if any(init.data_type == TensorProto.FLOAT16 for init in model.graph.initializer):
        return "fp16"
    return "fp32"


def _unique_names(candidates: list[Candidate]) -> list[Candidate]:
    from dataclasses import replace

    seen: dict[str, int] = {}
    unique = []
    for candidate in candidates:
        count = seen[candidate.name] = seen.get(candidate.name, 0) + 1
        name = candidate.name if count == 1 else f"{candidate.name} #{count}"
        unique.append(replace(candidate, name=name))
    return unique
