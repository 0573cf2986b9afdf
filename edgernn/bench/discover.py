"""Turn command-line paths (checkpoints, ONNX files, bundle directories) into candidates."""

from __future__ import annotations

from pathlib import Path

from edgernn.bench.config import JOBS, Candidate
from edgernn.bench.inputs import as_given, assign_axes, check_example
from edgernn.bundle.external import check_self_contained
from edgernn.bundle.manifest import complete_bundle, read_file, read_manifest
from edgernn.errors import EdgeRNNError
from edgernn.npz import load_npz

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
    paths: list[str],
    device: str = "cpu",
    example: str | None = None,
    axes: dict[str, tuple[str, ...]] | None = None,
    end_to_end: bool = True,
) -> list[Candidate]:
    """One candidate per runtime and precision each path can run as.

    A checkpoint gives PyTorch fp32 and dynamic int8 (and fp16 on cuda); an ONNX file gives
    one ONNX Runtime candidate at its own precision; a bundle gives one per ONNX file. For
    seq2seq and lm, ``end_to_end`` adds the app's whole job (``Candidate.job``) per precision:
    a checkpoint's own search in PyTorch, a bundle's ``Runtime.translate``/``generate``.

    Args:
        paths: checkpoints (``.pt``), ONNX files and bundle directories.
        device: ``cpu`` or ``cuda``.
        example: ``.npz`` inputs for bare ONNX files and custom bundles, keyed by input
            names. A bare ONNX file is then timed at the example's shapes (no grid).
        axes: from ``edgernn.export.axes.parse_axes``: the axes of a bare ONNX file's
            example arrays the grid varies (``batch``, ``time``; ``-`` stays as given).
        end_to_end: also the job candidates of seq2seq and lm checkpoints and bundles.

    Example::

        candidates = candidates_from_paths(["teacher.pt", "runs/bundle"], "cpu")
    """
    found: list[Candidate] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise EdgeRNNError(f"{path}: no such file or directory")
        if path.is_dir() and (path / "model.c").is_file():
            found.append(_from_c(path))
        elif path.is_dir():
            found += _from_bundle(path, example, end_to_end)
        elif path.suffix == ".pt":
            found += _from_checkpoint(path, device, end_to_end)
        elif path.suffix == ".onnx":
            found.append(_from_foreign_onnx(path, example, axes or {}))
        else:
            raise EdgeRNNError(
                f"{path}: unknown model file type {path.suffix or '(none)'!r}; bench takes "
                ".pt checkpoints, .onnx files and bundle directories"
            )
    if axes and not any(candidate.as_given for candidate in found):
        raise EdgeRNNError(
            "--axes is for ONNX files edgernn did not make (timed at the --example's shapes); "
            "checkpoints and bundles follow --batch-sizes and --seq-lens: drop --axes"
        )
    return _unique_names(found)


def _from_c(folder: Path) -> Candidate:
    """A C export folder: timed as built for this CPU; its task from the header."""
    from edgernn.c.library import c_precision, header_values

    task, values = header_values(folder)
    precision = c_precision(values)
    kind = "integer-only" if values.get("EDGERNN_INTEGER_ONLY") else precision
    return Candidate(f"{folder.name} c {kind}", str(folder), "c", precision, task=task)


def _from_foreign_onnx(path: Path, example: str | None, axes: dict) -> Candidate:
    if axes and example is None:
        raise EdgeRNNError(
            f"--axes needs --example inputs.npz for {path.name}: it marks which axes of the "
            "example's arrays may vary"
        )
    # With an example, its shapes are what the model takes (a streaming model's fixed chunk,
    # its state): bench times them as given instead of forcing the grid onto every axis.
    return _from_onnx(path, "peer", None, None, example, axes, as_given=example is not None)


def _from_checkpoint(path: Path, device: str, end_to_end: bool = True) -> list[Candidate]:
    from edgernn.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path)
    task = checkpoint.spec.task
    # A compressed student records its teacher; an adopted own model records only its origin.
    role = "student" if "teacher" in checkpoint.compression else "teacher"
    precisions = ("fp32", "fp16", "int8") if device == "cuda" else ("fp32", "int8")
    found = [
        Candidate(f"{path.name} torch {p}", str(path), "torch", p, role, task=task)
        for p in precisions
    ]
    job = JOBS.get(task) if end_to_end else None
    if job:  # the same model doing the app's job with its own search, one input per call
        found += [
            Candidate(
                f"{path.name} torch {p} {job}", str(path), "torch", p, role, task=task, job=job
            )
            for p in precisions
        ]
    return found


def _from_bundle(
    directory: Path, example: str | None = None, end_to_end: bool = True
) -> list[Candidate]:
    task, files = read_bundle(directory)
    # A custom bundle (a user's own module) has no task metric, and takes the example that
    # fixed its inputs; other bundles make their own inputs and ignore it.
    example = example if task == CUSTOM_TASK else None
    task = None if task == CUSTOM_TASK else task
    # "peer": a bundle measured on its own is nobody's final; compress (finish._merge) names
    # the graphs it shipped "final".
    found = [
        _from_onnx(
            Path(entry["path"]), "peer", task, entry["precision"], example, graph=entry["role"]
        )
        for entry in files
    ]
    job = JOBS.get(task) if end_to_end else None
    if job:  # the whole bundle through the runtime an app uses, per precision
        bundle = str(Path(directory).resolve())
        precisions = sorted({entry["precision"] for entry in files})
        found += [
            Candidate(
                f"{Path(bundle).name}/Runtime.{job} {p}", bundle, "onnx", p, task=task, job=job
            )
            for p in precisions
        ]
    return found


def _from_onnx(
    path: Path,
    role: str,
    task: str | None,
    precision: str | None,
    example: str | None,
    axes: dict | None = None,
    as_given: bool = False,
    graph: str | None = None,
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
        _check_example_file(example, onnx_inputs(model), axes if as_given else None)
    else:
        assign_axes(onnx_inputs(model))  # refuse underivable inputs now, not in a worker
    precision = precision if precision in ("fp32", "fp16", "int8") else onnx_precision(model)
    # A bundle's graph is named with its folder: two bundles' model.onnx stay apart.
    name = f"{path.parent.name}/{path.name}" if graph is not None else path.name
    label = f"{name} ort {precision}"
    return Candidate(
        label, str(path), "onnx", precision, role, example, task, graph, as_given, axes or {}
    )


def _check_example_file(example: str, inputs: list[dict], axes: dict | None) -> None:
    """Refuse a bad example (or ``--axes``, when timed as given) now, not in a worker."""
    # Headers checked before anything is allocated (edgernn.npz): the example is user input.
    shapes = {name: array.shape for name, array in load_npz(Path(example), None).items()}
    check_example(inputs, shapes)
    if axes is None:
        assign_axes(inputs, frozenset(shapes))
    else:
        as_given(inputs, shapes, axes)


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
