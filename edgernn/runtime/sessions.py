"""ONNX Runtime sessions of a bundle's graphs, each file verified before it is loaded."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from edgernn.bundle.manifest import read_file
from edgernn.errors import EdgeRNNError
from edgernn.runtime.checks import check_graph_io


def load_sessions(
    directory: Path, manifest: dict, precision: str, threads: int, check_all: bool = False
) -> dict[str, tuple[dict, ort.InferenceSession]]:
    """Role -> (manifest entry, CPU session) for every graph of ``precision``.

    Every file is verified (path, sha256, no tensor in another file), not only those
    loaded: a tampered bundle is refused whole, before any session is created. Each
    session's inputs and outputs must be those its entry lists; with ``check_all`` (``auto``
    precision, where either precision may be what the user gets) every graph's are checked.

    Raises:
        EdgeRNNError: a file fails its checks, ONNX Runtime cannot load it, or the bundle
            has no graph of ``precision``.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    graphs = {}
    contents = [(entry, read_file(directory, entry)) for entry in manifest["files"]]
    for entry, data in contents:
        if entry["precision"] != precision and not check_all:
            continue
        try:
            sess = ort.InferenceSession(data, options, ["CPUExecutionProvider"])
        except Exception as error:  # ORT reports a bad graph in several exception types
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            where = entry["path"]
            raise EdgeRNNError(f"{where}: ONNX Runtime cannot load it ({message})") from None
        check_graph_io(entry, sess)
        if entry["precision"] == precision:
            graphs[entry["role"]] = entry, sess
    if not graphs:
        raise EdgeRNNError(f"{directory}: the bundle has no {precision} graphs")
    return graphs
