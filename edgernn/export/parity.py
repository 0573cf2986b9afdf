"""Verify every exported graph against the PyTorch model on shapes it was not traced with.

Batches are padded (random lengths, zero padding, the longest row filling the batch) so a
graph that reads padding, or a length-handling bug, is caught. Per-step outputs (tag, lm)
are compared on valid steps only: what a padded step holds is not part of the contract.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import Tensor, nn

from edgernn.bundle.external import check_self_contained
from edgernn.errors import EdgeRNNError
from edgernn.export.config import TOLERANCE
from edgernn.export.graphs import example_inputs
from edgernn.models.encoder import length_mask

STREAM_TOLERANCE = 1e-5  # step graph chunk by chunk vs the full-sequence graph
PARITY_SHAPES = ((1, 4), (4, 9), (7, 3))  # (batch, time); the trace used (3, 6)
STREAM_CHUNKS = (1, 3, 2, 4)  # chunk sizes fed one after another; the last is cut to fit


def session(model: onnx.ModelProto | bytes) -> ort.InferenceSession:
    """A single-threaded CPU ONNX Runtime session (deterministic, no oversubscription).

    Raises:
        EdgeRNNError: a tensor keeps its data in another file (``edgernn.bundle.external``).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    data = model if isinstance(model, bytes) else model.SerializeToString()
    check_self_contained(data, "exported ONNX graph")  # ORT would read it from the cwd
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def random_lengths(batch: int, steps: int, seed: int) -> Tensor:
    """Lengths in 1..steps with the first row at ``steps`` (so the batch is really T long)."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, steps + 1, (batch,), generator=gen)
    lengths[0] = steps
    return lengths


def check_parity(
    model: nn.Module,
    sessions: dict[str, ort.InferenceSession],
    tolerance: float = TOLERANCE,
    stream_tolerance: float = STREAM_TOLERANCE,
) -> dict[str, float]:
    """Max abs difference between each graph and the PyTorch model; raise past ``tolerance``.

    Args:
        model: the zoo model that was exported (eval mode).
        sessions: role -> ONNX Runtime session (``model``, ``step``, ``encoder``, ``decoder``).
        tolerance: the largest difference accepted from the PyTorch model.
        stream_tolerance: the largest difference accepted between the step graph run chunk
            by chunk and the full-sequence graph.

    Returns:
        role -> max abs difference over every checked shape.

    Raises:
        EdgeRNNError: a graph differs from the model by more than the tolerance.
    """
    diffs = {}
    with torch.no_grad():
        for role, sess in sessions.items():
            diffs[role] = _CHECKS[role](model, sess, sessions)
            limit = stream_tolerance if role == "step" else tolerance
            if not diffs[role] <= limit:  # also catches NaN
                raise EdgeRNNError(
                    f"ONNX {role} graph differs from the PyTorch model by {diffs[role]:.3g} "
                    f"(tolerance {limit:g}); the export is wrong, please report it"
                )
    return diffs


def _max_diff(got: np.ndarray, want: Tensor, valid: Tensor | None = None) -> float:
    diff = np.abs(got - want.numpy())
    if valid is not None:
        diff = diff[valid.numpy()]
    return float(diff.max()) if diff.size else 0.0


def _per_step(spec) -> bool:
    return spec.task in ("tag", "lm")


def _check_model(model, sess, _sessions) -> float:
    spec, worst = model.spec, 0.0
    for seed, (batch, steps) in enumerate(PARITY_SHAPES):
        lengths = random_lengths(batch, steps, seed)
        inputs = example_inputs(spec, tuple(lengths.tolist()), seed)
        (got,) = sess.run(None, {"inputs": inputs.numpy(), "lengths": lengths.numpy()})
        valid = length_mask(lengths, steps) if _per_step(spec) else None
        worst = max(worst, _max_diff(got, model(inputs, lengths), valid))
    return worst


def _check_step(model, sess, sessions) -> float:
    # Feed whole rows chunk by chunk, carrying the state; compare with the full graph.
    spec, worst = model.spec, 0.0
    names = [value.name for value in sess.get_inputs()][2:]  # the state, in graph order
    for seed, (batch, steps) in enumerate(PARITY_SHAPES):
        lengths = torch.full((batch,), steps)
        inputs = example_inputs(spec, tuple(lengths.tolist()), seed).numpy()
        (full,) = sessions["model"].run(None, {"inputs": inputs, "lengths": lengths.numpy()})
        state = {
            value.name: np.zeros([batch if isinstance(d, str) else d for d in value.shape], "f4")
            for value in sess.get_inputs()[2:]
        }
        pieces, start = [], 0
        for size in _chunks(steps):
            chunk = inputs[:, start : start + size]
            feeds = {"inputs": chunk, "lengths": np.full(batch, size, np.int64)} | state
            result, *new_state = sess.run(None, feeds)
            state = dict(zip(names, new_state, strict=True))
            pieces.append(result)
            start += size
        streamed = np.concatenate(pieces, axis=1) if _per_step(spec) else pieces[-1]
        worst = max(worst, float(np.abs(streamed - full).max()))
    return worst


def _chunks(steps: int) -> list[int]:
    sizes, left = [], steps
    for size in STREAM_CHUNKS * steps:
        if left == 0:
            break
        sizes.append(min(size, left))
        left -= sizes[-1]
    return sizes


def _check_encoder(model, sess, _sessions) -> float:
    spec, worst = model.spec, 0.0
    for seed, (batch, steps) in enumerate(PARITY_SHAPES):
        lengths = random_lengths(batch, steps, seed)
        src = example_inputs(spec, tuple(lengths.tolist()), seed)
        memory, mask, *state = sess.run(None, {"src": src.numpy(), "src_lengths": lengths.numpy()})
        want = model.encode(src, lengths)
        if not np.array_equal(mask, want.mask.numpy()):
            return float("inf")
        worst = max(worst, _max_diff(memory, want.memory, want.mask))
        worst = max(worst, *(_max_diff(a, b) for a, b in zip(state, want.state, strict=True)))
    return worst


def _check_decoder(model, sess, _sessions) -> float:
    spec, worst = model.spec, 0.0
    for seed, (batch, steps) in enumerate(PARITY_SHAPES):
        lengths = random_lengths(batch, steps, seed)
        encoded = model.encode(example_inputs(spec, tuple(lengths.tolist()), seed), lengths)
        gen = torch.Generator().manual_seed(seed)
        state = tuple(torch.randn(part.shape, generator=gen) for part in encoded.state)
        tokens = torch.randint(0, spec.num_outputs, (batch,), generator=gen)
        feeds = {"tokens": tokens.numpy(), "memory": encoded.memory.numpy()}
        feeds |= {"mask": encoded.mask.numpy()} | _state_feeds(state)
        logits, *new_state = sess.run(None, feeds)
        want_logits, want_state = model.decode_step(tokens, state, encoded.memory, encoded.mask)
        worst = max(worst, _max_diff(logits, want_logits))
        worst = max(worst, *(_max_diff(a, b) for a, b in zip(new_state, want_state, strict=True)))
    return worst


def _state_feeds(state: tuple[Tensor, ...]) -> dict[str, np.ndarray]:
    return {name: part.numpy() for name, part in zip(("state_h", "state_c"), state, strict=False)}


_CHECKS = {
    "model": _check_model,
    "step": _check_step,
    "encoder": _check_encoder,
    "decoder": _check_decoder,
}
