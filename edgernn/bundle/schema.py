"""The bundle manifest schema: the type and shape of every field the runtime reads.

Hand-written rather than a JSON Schema: the runtime depends on numpy and onnxruntime only (a
device has no room for a validator library), and each message must name the manifest and the
field in one line, as the CLI shows it. Stdlib only, like ``edgernn.bundle.manifest``.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path, PurePosixPath
from typing import NoReturn

from edgernn.errors import EdgeRNNError
from edgernn.text import manifest_problem

# "custom": a user's own nn.Module exported as is; only ``Runtime.run`` applies to it.
TASKS = ("classify", "tag", "lm", "regress", "seq2seq", "custom")
ROLES = ("model", "step", "encoder", "decoder")
PRECISIONS = ("fp32", "int8")
DTYPES = ("float32", "int64", "bool")
TOKENIZATIONS = ("char", "word", "pretokenized")
SPECIAL_COUNT = 4  # <pad>, <unk>, <bos>, <eos> open every vocabulary
# The runtime allocates each state as zeros, per row of a batch: (layers, batch, hidden) with
# layers * hidden at most this (4 MiB of float32 a row); a real recurrent model is far smaller.
MAX_STATE_SIZE = 2**20
# The inputs the runtime feeds each role's graph (besides its state), as (dtype, rank);
# "inputs" is int64 (B, T) token ids or float32 (B, T, F) features.
ROLE_INPUTS = {
    "model": ("inputs", "lengths"),
    "step": ("inputs", "lengths"),
    "encoder": ("src", "src_lengths"),
    "decoder": ("tokens", "memory", "mask"),
}
ROLE_OUTPUTS = {"encoder": ("memory", "mask"), "decoder": ("logits",)}
TENSORS = {
    "lengths": ("int64", 1),
    "src": ("int64", 2),
    "src_lengths": ("int64", 1),
    "tokens": ("int64", 1),
    "memory": ("float32", 3),
    "mask": ("bool", 2),
}
# Rank of the scores each task's model/step graph returns first: (B, C) or (B, T, V).
HEAD_RANK = {"classify": 2, "regress": 2, "tag": 3, "lm": 3}
_SHA256 = re.compile("[0-9a-f]{64}")
_RELEASE = re.compile(r"[0-9]+\.[0-9]+(\.[0-9]+)?")  # an ONNX Runtime release, 1.14 or 1.14.1
_SHOWN = 60  # characters of a bad value quoted in a message


def check_manifest(manifest: dict, where: Path) -> None:
    """Refuse a manifest (already format- and version-checked) the runtime could not use.

    Args:
        manifest: the parsed ``manifest.json``.
        where: its path, for the messages.

    Raises:
        EdgeRNNError: one line naming ``where`` and the first field that is wrong.
    """
    task = manifest.get("task")
    if task not in TASKS:
        _fail(where, "task", f"one of {', '.join(TASKS)}", task)
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        _fail(where, "files", "a non-empty list of file entries", files)
    for index, entry in enumerate(files):
        _entry(entry, f"files[{index}]", where)
    _unique(files, where)
    if task == "custom":  # no vocabularies, labels or scaling: run() takes the arrays as they are
        _roles_present(files, ("model",), where)
        return
    _input(manifest.get("input"), task, where)
    _text(manifest["input"], manifest.get("version"), where)
    _vocabularies(manifest, task, where)
    _normalization(manifest, task, where)
    _roles_present(files, ("encoder", "decoder") if task == "seq2seq" else ("model",), where)
    for index, entry in enumerate(files):
        _role_io(manifest, entry, f"files[{index}]", where)
    _encoder_feeds_decoder(files, where)


def _fail(where: Path, field: str, must: str, value: object = ...) -> NoReturn:
    got = "" if value is ... else f", got {_short(value)}"
    raise EdgeRNNError(f"{where}: field {field} must be {must}{got}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry(entry: object, field: str, where: Path) -> None:
    if not isinstance(entry, dict):
        _fail(where, field, "an object", entry)
    path = entry.get("path")
    if not _relative(path):
        must = "a relative path with no '..' (nothing outside the bundle)"
        _fail(where, f"{field}.path", must, path)
    sha = entry.get("sha256")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        _fail(where, f"{field}.sha256", "64 lowercase hex digits", sha)
    for key, choices in (("role", ROLES), ("precision", PRECISIONS)):
        if entry.get(key) not in choices:
            _fail(where, f"{field}.{key}", f"one of {', '.join(choices)}", entry.get(key))
    inputs = _tensors(entry.get("inputs"), f"{field}.inputs", where)
    outputs = _tensors(entry.get("outputs"), f"{field}.outputs", where)
    states = entry.get("states")
    if states is not None and not isinstance(states, list):
        _fail(where, f"{field}.states", "a list", states)
    for index, state in enumerate(states or []):
        _state(state, inputs, outputs, f"{field}.states[{index}]", where)
    _requirements(entry, field, where)


def _requirements(entry: dict, field: str, where: Path) -> None:
    # What ONNX Runtime the file needs (edgernn.export.requirements); informational, so
    # optional (bundles written before these fields have none), but well-formed when given.
    ops = entry.get("ops")
    if ops is not None:
        if not isinstance(ops, dict):
            _fail(where, f"{field}.ops", "an object {domain: opset or operator names}", ops)
        for domain, used in ops.items():
            if domain == "ai.onnx":
                if not _is_int(used) or used < 1:
                    _fail(where, f"{field}.ops.ai.onnx", "a positive opset version", used)
            elif not _names(used):
                _fail(where, f"{field}.ops.{domain}", "a list of operator names", used)
    release = entry.get("min_onnxruntime")
    if release is not None and not (isinstance(release, str) and _RELEASE.fullmatch(release)):
        _fail(where, f"{field}.min_onnxruntime", "a release like '1.14'", release)


def _names(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(name, str) and name for name in value)


def _relative(path: object) -> bool:
    if not isinstance(path, str) or not path or "\x00" in path or "\\" in path:
        return False
    try:
        path.encode("utf-8")  # lone surrogates name no file
    except UnicodeEncodeError:
        return False
    pure = PurePosixPath(path)
    return not pure.is_absolute() and not Path(path).is_absolute() and ".." not in pure.parts


def _tensors(specs: object, field: str, where: Path) -> dict[str, dict]:
    if not isinstance(specs, list) or not specs:
        _fail(where, field, "a non-empty list of {name, dtype, shape}", specs)
    named: dict[str, dict] = {}
    for index, spec in enumerate(specs):
        item = f"{field}[{index}]"
        if not isinstance(spec, dict):
            _fail(where, item, "an object {name, dtype, shape}", spec)
        name, shape = spec.get("name"), spec.get("shape")
        if not isinstance(name, str) or not name or name in named:
            _fail(where, f"{item}.name", "a non-empty string, unique in the list", name)
        if spec.get("dtype") not in DTYPES:
            _fail(where, f"{item}.dtype", f"one of {', '.join(DTYPES)}", spec.get("dtype"))
        if not isinstance(shape, list) or not all(_is_dim(dim) for dim in shape):
            _fail(where, f"{item}.shape", "a list of sizes (int >= 0) and names (str)", shape)
        named[name] = spec
    return named


def _is_dim(dim: object) -> bool:
    return (_is_int(dim) and dim >= 0) or (isinstance(dim, str) and bool(dim))


def _state(state: object, inputs: dict, outputs: dict, field: str, where: Path) -> None:
    if not isinstance(state, dict):
        _fail(where, field, "an object {input, output, shape}", state)
    name, output = state.get("input"), state.get("output")
    if not isinstance(name, str) or name not in inputs or inputs[name]["dtype"] != "float32":
        _fail(where, f"{field}.input", "the name of one of the file's float32 inputs", name)
    if not isinstance(output, str) or output not in outputs:
        _fail(where, f"{field}.output", "the name of one of the file's outputs", output)
    shape = state.get("shape")
    if shape != inputs[name]["shape"] or any(isinstance(d, str) and d != "batch" for d in shape):
        must = f"the shape of input {name!r}, with 'batch' its only named size"
        _fail(where, f"{field}.shape", must, shape)
    if math.prod(d for d in shape if _is_int(d)) > MAX_STATE_SIZE:
        _fail(where, f"{field}.shape", f"at most {MAX_STATE_SIZE:,} values per batch row", shape)


def _unique(files: list[dict], where: Path) -> None:
    paths: set[str] = set()
    graphs: set[tuple[str, str]] = set()
    for index, entry in enumerate(files):
        path, graph = os.path.normpath(entry["path"]), (entry["role"], entry["precision"])
        if path in paths:
            _fail(where, f"files[{index}].path", "unique: another entry names it", entry["path"])
        if graph in graphs:
            _fail(where, f"files[{index}].role", f"unique per precision (two {graph} graphs)")
        paths.add(path)
        graphs.add(graph)


def _roles_present(files: list[dict], roles: tuple[str, ...], where: Path) -> None:
    for precision in sorted({entry["precision"] for entry in files}):
        present = {entry["role"] for entry in files if entry["precision"] == precision}
        if not set(roles) <= present:
            _fail(
                where, "files", f"a list with {precision} graphs for {list(roles)}", sorted(present)
            )


def _input(value: object, task: str, where: Path) -> None:
    if not isinstance(value, dict):
        _fail(where, "input", "an object {type, tokenization, features, max_len}", value)
    kinds = ("tokens",) if task in ("tag", "lm", "seq2seq") else ("tokens", "features")
    if value.get("type") not in kinds:
        _fail(where, "input.type", f"one of {', '.join(kinds)} for {task}", value.get("type"))
    if not _is_int(value.get("max_len")) or value["max_len"] < 1:
        _fail(where, "input.max_len", "a positive integer", value.get("max_len"))
    if value["type"] == "tokens" and value.get("tokenization") not in TOKENIZATIONS:
        must = f"one of {', '.join(TOKENIZATIONS)}"
        _fail(where, "input.tokenization", must, value.get("tokenization"))
    if value["type"] == "features" and (
        not _is_int(value.get("features")) or value["features"] < 1
    ):
        _fail(where, "input.features", "a positive integer", value.get("features"))


def _text(value: dict, version: object, where: Path) -> None:
    # The tokenization rules (edgernn.text); a version-1 manifest has none: the legacy ones.
    text = value.get("text")
    if value["type"] == "features" or (text is None and version == 1):
        if text is not None:
            _fail(where, "input.text", "null for numeric features", text)
        return
    problem = manifest_problem(text)
    if problem is not None:
        key, must, got = problem
        _fail(where, "input.text" if key == "text" else f"input.text.{key}", must, got)
    units = "code_points" if value["tokenization"] == "char" else "words"
    if text["units"] != units:
        _fail(where, "input.text.units", f"{units} for tokenization {value['tokenization']}")


def _vocabularies(manifest: dict, task: str, where: Path) -> None:
    tokens = manifest["input"]["type"] == "tokens"
    required = {"vocab": tokens, "target_vocab": task == "seq2seq"}
    required |= {"labels": task in ("classify", "tag")}
    for key, needed in required.items():
        value = manifest.get(key)
        if value is None and not needed:
            continue
        # A vocabulary holds the specials plus at least one token a model can produce.
        least = 1 if key == "labels" else SPECIAL_COUNT + 1
        if not isinstance(value, list) or len(value) < least:
            _fail(where, key, f"a list of at least {least} strings", value)
        if not all(isinstance(item, str) for item in value):
            _fail(where, key, "a list of strings", value)


def _normalization(manifest: dict, task: str, where: Path) -> None:
    features = manifest["input"]["type"] == "features"
    if not features and task != "regress":
        return
    norm = manifest.get("normalization")
    if not isinstance(norm, dict):
        _fail(where, "normalization", "an object of per-feature means and stds", norm)
    size = manifest["input"]["features"] if features else None
    for key in ("x_mean", "x_std") if features else ():
        _numbers(norm.get(key), f"normalization.{key}", size, key.endswith("std"), where)
    if task == "regress":
        size = len(_numbers(norm.get("y_mean"), "normalization.y_mean", None, False, where))
        _numbers(norm.get("y_std"), "normalization.y_std", size, True, where)


def _numbers(value: object, field: str, size: int | None, positive: bool, where: Path) -> list:
    finite = isinstance(value, list) and all(
        (_is_int(v) or isinstance(v, float)) and math.isfinite(v) and (v > 0 or not positive)
        for v in value
    )
    if not finite or not value or (size is not None and len(value) != size):
        count = f"{size} " if size is not None else ""
        sign = "positive" if positive else "finite"
        _fail(where, field, f"a list of {count}{sign} numbers", value)
    return value


def _role_io(manifest: dict, entry: dict, field: str, where: Path) -> None:
    role = entry["role"]
    states = entry.get("states") or []
    names = [spec["name"] for spec in entry["inputs"]]
    wanted = [*ROLE_INPUTS[role], *(state["input"] for state in states)]
    if sorted(names) != sorted(wanted):
        _fail(where, f"{field}.inputs", f"named {sorted(wanted)} for a {role} graph", names)
    if role in ("step", "decoder") and not states:
        _fail(where, f"{field}.states", f"a non-empty list for a {role} graph", states)
    if any(len(state["shape"]) != 3 or state["shape"][1] != "batch" for state in states):
        _fail(where, f"{field}.states", "shaped (layers, 'batch', hidden)", states)
    outputs = {spec["name"]: spec for spec in entry["outputs"]}
    if not set(ROLE_OUTPUTS.get(role, ())) <= set(outputs):
        must = f"a list including {list(ROLE_OUTPUTS[role])} for a {role} graph"
        _fail(where, f"{field}.outputs", must, list(outputs))
    features = manifest["input"]["type"] == "features"
    tensors = TENSORS | {"inputs": ("float32", 3) if features else ("int64", 2)}
    for kind in ("inputs", "outputs"):
        for index, spec in enumerate(entry[kind]):
            dtype, rank = tensors.get(spec["name"], (spec["dtype"], len(spec["shape"])))
            if spec["dtype"] != dtype or len(spec["shape"]) != rank:
                must = f"a {dtype} tensor of rank {rank}"
                _fail(where, f"{field}.{kind}[{index}]", must, spec)
    if role != "encoder":
        head = outputs["logits"] if role == "decoder" else entry["outputs"][0]
        index = entry["outputs"].index(head)
        _head(manifest, head["shape"], f"{field}.outputs[{index}].shape", where)


def _head(manifest: dict, shape: list, field: str, where: Path) -> None:
    # The runtime indexes labels and vocabularies with the graph's scores: widths must agree.
    task = manifest["task"]
    names = {"classify": "labels", "tag": "labels", "lm": "vocab", "seq2seq": "target_vocab"}
    if task == "regress":
        what, width = "target", len(manifest["normalization"]["y_mean"])
    else:
        what, width = names[task], len(manifest[names[task]])
    rank = HEAD_RANK.get(task, 2)
    if len(shape) != rank or shape[-1] != width:
        must = f"a shape of rank {rank} ending in {width} (a score per {what} entry)"
        _fail(where, field, must, shape)


def _encoder_feeds_decoder(files: list[dict], where: Path) -> None:
    # The encoder's outputs start the decoder: each decoder state needs one of the same name.
    for precision in PRECISIONS:
        graphs = {e["role"]: e for e in files if e["precision"] == precision}
        if "decoder" not in graphs or "encoder" not in graphs:
            continue
        made = {spec["name"] for spec in graphs["encoder"]["outputs"]}
        for state in graphs["decoder"].get("states") or []:
            if state["input"] not in made:
                must = f"a list including the decoder state {state['input']!r}"
                _fail(where, f"{precision} encoder outputs", must, sorted(made))
