"""What the runtime checks before a graph runs; numpy only, like the runtime.

A loaded graph must declare the inputs and outputs its manifest entry lists (a swapped file
with a recomputed hash is refused at load, not by a later ONNX Runtime failure), and every
call's arrays must fit that entry and the limits in ``RuntimeLimits``, so that no input makes
the runtime allocate without bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from edgernn.errors import EdgeRNNError

ORT_TYPES = {"tensor(float)": "float32", "tensor(int64)": "int64", "tensor(bool)": "bool"}
BATCH_DIMS = ("batch",)  # named sizes bounded by RuntimeLimits.max_batch
TIME_DIMS = ("time", "src_time")  # named sizes bounded by the sequence-length limit
LENGTHS_OF = {"lengths": "inputs", "src_lengths": "src"}  # lengths input -> padded input
MEMORY_BOUND = 1.001  # |memory| <= 1 (tanh-bounded outputs), plus room for float rounding


@dataclass(frozen=True)
class RuntimeLimits:
    """Bounds on what one runtime call accepts; over a bound is an error that names it.

    Example::

        Runtime("runs/bundle", limits=RuntimeLimits(max_batch=4096, max_generate=50_000))
    """

    max_batch: int = 1024  # rows in one run()/step() call; predict and translate split lists
    max_len: int | None = None  # tokens or steps per input; None: the manifest's input.max_len
    max_generate: int = 10_000  # tokens one generate() call samples
    max_decode: int = 2048  # target tokens per source in translate() (its max_len)
    max_beam: int = 64  # translate() beam width

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None and field.name == "max_len":
                continue
            if not is_count(value) or value < 1:
                raise EdgeRNNError(f"RuntimeLimits.{field.name} must be >= 1, got {value!r}")


def over_limit(what: str, value: int, limit: str, bound: int) -> EdgeRNNError:
    """The error for a request above a limit: what, the bound, and how to raise it."""
    return EdgeRNNError(
        f"{what} is {value}, above the limit {limit}={bound}; reduce it, or raise the limit "
        f"with Runtime(bundle, limits=RuntimeLimits({limit}=...))"
    )


def check_graph_io(entry: dict, session) -> None:
    """Refuse a graph whose inputs or outputs differ from its manifest entry.

    Names and element types must agree, and ranks, and every size the manifest fixes.
    Inputs are compared by name (they are fed by name), outputs in order (they are read so).

    Args:
        entry: the file's manifest entry.
        session: its ``onnxruntime.InferenceSession``.
    """
    pairs = {
        "input": (sorted(entry["inputs"], key=_name), sorted(session.get_inputs(), key=_name)),
        "output": (entry["outputs"], session.get_outputs()),
    }
    for kind, (specs, args) in pairs.items():
        graph = [(arg.name, ORT_TYPES.get(arg.type, arg.type), arg.shape) for arg in args]
        listed = [(spec["name"], spec["dtype"], spec["shape"]) for spec in specs]
        if len(graph) != len(listed) or not all(map(_same, listed, graph)):
            raise EdgeRNNError(
                f"{entry['path']}: the graph's {kind}s {_show(graph)} differ from the manifest's "
                f"{_show(listed)}; the file was replaced or the manifest edited, export again"
            )


def _name(item) -> str:
    return item["name"] if isinstance(item, dict) else item.name


def _same(listed: tuple, graph: tuple) -> bool:
    (name, dtype, shape), (graph_name, graph_dtype, graph_shape) = listed, graph
    if name != graph_name or dtype != graph_dtype:
        return False
    if graph_shape is None:  # the graph declares no shape: nothing more to compare
        return True
    fixed = [isinstance(dim, int) and dim > 0 for dim in shape]
    return len(shape) == len(graph_shape) and all(
        not fix or dim == graph_dim
        for fix, dim, graph_dim in zip(fixed, shape, graph_shape, strict=True)
    )


def _show(items: list[tuple]) -> str:
    return (
        "[" + ", ".join(f"{name}:{dtype}{list(shape or [])}" for name, dtype, shape in items) + "]"
    )


def check_feeds(entry: dict, feeds: object, limits: RuntimeLimits, max_len: int | None) -> None:
    """Check numpy feeds against a file entry's inputs and the limits.

    Names, dtypes, ranks, fixed sizes, named sizes consistent across inputs, batch and
    sequence sizes within the limits, and float values finite.

    Raises:
        EdgeRNNError: naming the first input that does not fit, and what it should be.
    """
    if not isinstance(feeds, dict):
        got = type(feeds).__name__
        raise EdgeRNNError(f"feeds must be a dict of input name -> numpy array, got {got}")
    expected = {spec["name"]: spec for spec in entry["inputs"]}
    if set(feeds) != set(expected):
        got = sorted(map(str, feeds))
        raise EdgeRNNError(f"{entry['path']} takes inputs {sorted(expected)}, got {got}")
    sizes: dict[str, int] = {}
    for name, spec in expected.items():
        value = feeds[name]
        if not isinstance(value, np.ndarray) or str(value.dtype) != spec["dtype"]:
            got = getattr(value, "dtype", type(value).__name__)
            raise EdgeRNNError(f"input {name!r} must be a numpy {spec['dtype']} array, got {got}")
        shape = spec["shape"]
        fits = value.ndim == len(shape) and all(
            size == dim if isinstance(dim, int) else sizes.setdefault(dim, size) == size
            for size, dim in zip(value.shape, shape, strict=False)  # rank checked first
        )
        if not fits or 0 in value.shape:
            raise EdgeRNNError(f"input {name!r} must have shape {shape}, got {list(value.shape)}")
        _check_sizes(name, value.shape, shape, limits, max_len)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise EdgeRNNError(f"input {name!r} holds NaN or infinite values")


def _check_sizes(name: str, sizes: tuple, dims: list, limits: RuntimeLimits, max_len) -> None:
    for size, dim in zip(sizes, dims, strict=True):
        if dim in BATCH_DIMS and size > limits.max_batch:
            raise over_limit(f"the batch of input {name!r}", size, "max_batch", limits.max_batch)
        if dim in TIME_DIMS and max_len is not None and size > max_len:
            raise over_limit(f"the length of input {name!r}", size, "max_len", max_len)


def check_token_values(
    feeds: dict[str, np.ndarray], id_limits: dict[str, int], lengths_of: dict[str, str]
) -> None:
    """Values the graphs cannot answer: token ids outside their vocabulary, lengths of 0 or
    past the padded length, a decoder ``memory`` no encoder gives or an all-false ``mask``
    row, an inconsistent pool state.

    Args:
        feeds: already checked by ``check_feeds``.
        id_limits: token input name -> vocabulary size.
        lengths_of: lengths input name -> the padded input it measures (``LENGTHS_OF``).
            Both are empty for custom models, whose inputs edgernn knows nothing about.
    """
    for name, limit in id_limits.items():
        value = feeds.get(name)
        if value is not None and (value.min() < 0 or value.max() >= limit):
            bad = int(value[(value < 0) | (value >= limit)][0])
            raise EdgeRNNError(f"{name}: token id {bad} is unknown (ids are 0..{limit - 1})")
    for name, padded in lengths_of.items():
        if name not in feeds:
            continue
        # A length of 0 leaves a row with no valid step: the graphs would pool or attend
        # over nothing (NaN or a bias-only answer), so it is refused even without `padded`.
        steps = feeds[padded].shape[1] if padded in feeds else None
        if feeds[name].min() < 1 or (steps is not None and feeds[name].max() > steps):
            bound = f"lie in 1..{steps} (the padded length)" if steps else "be >= 1"
            raise EdgeRNNError(f"{name} must {bound}")
    if lengths_of:  # edgernn's own graphs; a custom model's inputs mean what its author says
        check_memory(feeds)
        check_mask_rows(feeds)
        check_pool_state(feeds)


def check_memory(feeds: dict[str, np.ndarray]) -> None:
    """The decoder's ``memory`` is recurrent outputs, so within [-1, 1] (tanh-bounded).

    Larger values are no encoder's output, and near float32's range the attention scores
    overflow to inf - inf: NaN logits.
    """
    memory = feeds.get("memory")
    if memory is not None and memory.dtype.kind == "f" and np.abs(memory).max() > MEMORY_BOUND:
        raise EdgeRNNError("memory must lie in [-1, 1]: pass the encoder's memory output")


def check_mask_rows(feeds: dict[str, np.ndarray]) -> None:
    """The decoder's ``mask`` must mark at least one source position per row.

    Attention is a softmax over the marked positions; over none it is 0/0, NaN logits.
    """
    mask = feeds.get("mask")
    if mask is not None and mask.dtype == bool and not mask.any(axis=-1).all():
        row = int(np.flatnonzero(~mask.any(axis=-1))[0])
        raise EdgeRNNError(
            f"mask row {row} marks no source position; every row needs at least one True "
            "(pass the encoder's mask)"
        )


def check_pool_state(feeds: dict[str, np.ndarray]) -> None:
    """A pooling stream's state: ``pool_steps`` counts steps, and 0 steps pool nothing.

    The step graph divides the running sum by ``pool_steps`` + this chunk's lengths (mean
    pooling) or keeps ``pool`` only where ``pool_steps`` > 0 (max pooling), so a negative
    or fractional count gives NaN or a wrong mean, and a nonzero ``pool`` at 0 steps would
    be added into a new stream's mean.
    """
    steps, pool = feeds.get("pool_steps"), feeds.get("pool")
    if steps is None:
        return
    if (steps < 0).any() or (steps != np.round(steps)).any():
        raise EdgeRNNError(
            "pool_steps must be whole numbers >= 0 (the steps the pool covers; 0 starts a "
            "stream), as the step graph's pool_steps_out gives"
        )
    if pool is not None and pool.shape[:2] == steps.shape[:2]:
        fresh = steps[..., 0] == 0  # (1, batch): rows starting a new stream
        if (pool[fresh] != 0).any():
            raise EdgeRNNError(
                "pool must be zeros where pool_steps is 0 (a new stream has pooled nothing); "
                "start from initial_state() or pass the pool_out that came with pool_steps_out"
            )


def is_count(value: object) -> bool:
    """An integer (numpy ones too), not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def as_list(inputs: object) -> list:
    """A list of inputs, refusing a bare text (it would be taken as one input per character)."""
    if isinstance(inputs, str | bytes) or not isinstance(inputs, list | tuple | np.ndarray):
        raise EdgeRNNError(
            f"inputs must be a list with one item per input, got {type(inputs).__name__}; "
            "wrap a single input in a list"
        )
    if isinstance(inputs, np.ndarray) and inputs.ndim == 0:
        raise EdgeRNNError("inputs must be a list with one item per input, got a 0-d array")
    return list(inputs)


def text_input(item: object, index: int) -> str:
    """``item`` if it is a str; the error names input ``index``."""
    if not isinstance(item, str):
        raise EdgeRNNError(f"input {index} must be a text (str), got {type(item).__name__}")
    return item


def check_sampling(prefix, length, temperature, top_k, seed) -> None:
    """``generate``'s arguments: a str prefix, integers and a finite temperature."""
    if not isinstance(prefix, str):
        raise EdgeRNNError(f"prefix must be a text (str), got {type(prefix).__name__}")
    if not is_count(length) or length < 0:
        raise EdgeRNNError(f"length must be an integer >= 0, got {length!r}")
    if not _finite(temperature) or temperature < 0:
        raise EdgeRNNError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if top_k is not None and (not is_count(top_k) or top_k < 1):
        raise EdgeRNNError(f"top_k must be an integer >= 1 or None, got {top_k!r}")
    if not is_count(seed) or seed < 0:
        raise EdgeRNNError(f"seed must be an integer >= 0, got {seed!r}")


def _finite(value: object) -> bool:
    if not isinstance(value, int | float | np.integer | np.floating) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int past float's range
        return False


def check_decoding(beam: int, max_len: int | None, limits: RuntimeLimits) -> None:
    """``translate``'s beam and max_len: integers >= 1 within the limits."""
    if not is_count(beam) or beam < 1:
        raise EdgeRNNError(f"beam must be an integer >= 1, got {beam!r}")
    if beam > limits.max_beam:
        raise over_limit("beam", beam, "max_beam", limits.max_beam)
    if max_len is not None and (not is_count(max_len) or max_len < 1):
        raise EdgeRNNError(f"max_len must be an integer >= 1 or None, got {max_len!r}")
    if max_len is not None and max_len > limits.max_decode:
        raise over_limit("max_len", max_len, "max_decode", limits.max_decode)
