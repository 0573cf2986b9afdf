"""What a candidate is, measured without timing it: size, parameters, non-zeros, task metric."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from edgernn.bench.config import Candidate


def static_stats(candidate: Candidate) -> dict:
    """``size_bytes``, ``params``, ``nonzero_params`` and ``size_parts`` (weight bytes by
    part: embedding, recurrent, head) of one candidate.

    PyTorch sizes are the serialized ``state_dict`` at the candidate's precision (what a
    device stores; the checkpoint file also holds vocabularies); ONNX sizes are the file.
    ONNX parameters are all initializer elements (int8 graphs include scales and zero points).
    A bundle's end-to-end job counts every graph of its precision (encoder and decoder).
    """
    if candidate.format == "torch":
        return _torch_stats(candidate.path, candidate.precision)
    if candidate.format == "c":
        return _c_stats(candidate.path)
    if candidate.job:  # the whole bundle at one precision: every graph the job loads
        return _bundle_stats(candidate.path, candidate.precision)
    return _onnx_stats(candidate.path)


def _bundle_stats(bundle: str, precision: str) -> dict:
    from edgernn.bundle.manifest import read_manifest

    graphs = [
        _onnx_stats(str(Path(bundle) / entry["path"]))
        for entry in read_manifest(Path(bundle))["files"]
        if entry["precision"] == precision
    ]
    from edgernn.report.rows import PARTS

    parts = {part: sum(g["size_parts"][part] for g in graphs) for part in PARTS}
    counts = {
        key: sum(g[key] for g in graphs) for key in ("size_bytes", "params", "nonzero_params")
    }
    return counts | {"size_parts": parts}


def _c_stats(folder: str) -> dict:
    # The C arrays in flash are its size; its RAM, fixed at compile time, the worker reads.
    from edgernn.c.library import header_values

    _, values = header_values(Path(folder))
    weights = values.get("EDGERNN_WEIGHTS", 0)  # the matrices' entries
    flash = values["EDGERNN_FLASH_BYTES"]
    return {
        "size_bytes": flash,
        "flash_bytes": flash,
        "params": weights,
        "nonzero_params": weights,
        "size_parts": None,
    }


def _torch_stats(path: str, precision: str) -> dict:
    from edgernn.bench.precision import variant
    from edgernn.checkpoint import load_checkpoint
    from edgernn.models.size import parameter_counts, serialized_size, size_by_part

    model = load_checkpoint(path).build()
    params, nonzero = parameter_counts(model)
    shipped = variant(model, precision)
    return {
        "size_bytes": serialized_size(shipped),
        "params": params,
        "nonzero_params": nonzero,
        "size_parts": size_by_part(shipped),
    }


def _onnx_stats(path: str) -> dict:
    import numpy as np
    import onnx
    from onnx.numpy_helper import to_array

    from edgernn.report.onnx_parts import onnx_size_by_part

    model = onnx.load(path)
    arrays = [to_array(init) for init in model.graph.initializer]
    return {
        "size_bytes": Path(path).stat().st_size,
        "params": int(sum(a.size for a in arrays)),
        "nonzero_params": int(sum(np.count_nonzero(a) for a in arrays)),
        "size_parts": onnx_size_by_part(model),
    }


def task_metrics(candidate: Candidate, data: str, device: str) -> dict[str, float] | None:
    """Every metric of the task on the test split of ``data``; None where bench cannot score.

    PyTorch candidates are scored at their own precision (int8 on CPU, as it runs); the
    graphs of an edgernn bundle through the torch-free runtime, the way an app runs them
    (every graph of one precision gets that precision's score). A bare ONNX file or a custom
    bundle has no task to score.
    """
    if candidate.format != "torch":
        # A job candidate is the bundle folder itself; a graph lies in it.
        bundle = Path(candidate.path) if candidate.job else Path(candidate.path).parent
        if candidate.task is None or not (bundle / "manifest.json").is_file():
            return None
        return _bundle_scores(str(bundle), candidate.precision, data)
    from edgernn.bench.precision import variant
    from edgernn.checkpoint import load_checkpoint
    from edgernn.evaluate import evaluate

    checkpoint = load_checkpoint(candidate.path)
    examples = _test_split(candidate.path, Path(candidate.path).stat().st_mtime_ns, data)
    run_on = "cpu" if candidate.precision == "int8" else device
    model = variant(checkpoint.build(), candidate.precision).to(run_on)
    return evaluate(model, examples, checkpoint.meta, run_on)


@lru_cache(maxsize=8)
def _bundle_scores(bundle: str, precision: str, data: str) -> dict[str, float]:
    # model and step graphs (encoder and decoder for seq2seq) share one score per precision.
    from edgernn.export.scoring import bundle_metrics

    return bundle_metrics(bundle, precision, data)


@lru_cache(maxsize=8)
def _test_split(path: str, mtime_ns: int, data: str) -> list:
    # fp32, fp16 and int8 rows of one checkpoint score the same encoded split.
    from edgernn.checkpoint import checkpoint_data, load_checkpoint

    encoded, _ = checkpoint_data(load_checkpoint(path), data)  # data given: loads or raises
    return encoded.splits["test"]
