"""The readings of a recurrence that edgernn's models express, built and compared with a user's.

A *candidate* is an edgernn model with the user's weights plus how its outputs line up with
``forward``'s: the example's axes (batch-first, time-first, one unbatched sequence), the
readout (final hidden state, mean or max over time, every step), the order of the two
directions in a concatenated final state, and the function ``forward`` applies last
(none, log-softmax, softmax, sigmoid).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from edgernn.config import ModelSpec
from edgernn.models import build_model
from edgernn.own.load import OwnModel
from edgernn.own.parts import NotAdoptable, Parts, recurrent_state
from edgernn.own.vocab import TokenMap

TRANSFORMS = ("identity", "log_softmax", "softmax")
READOUTS = {"last": "the final hidden state", "mean": "the mean over time", "max": "the max"}
MASKED_LOGIT = -30.0  # a reserved token the user's LM never predicts: probability ~1e-13


@dataclass(frozen=True)
class Layout:
    """Which example input holds the sequence and which the lengths (others are zero states)."""

    main: str
    tokens: bool
    lengths: str | None

    @classmethod
    def of(cls, model: OwnModel, parts: Parts) -> Layout:
        names = list(model.inputs)
        main, rest = names[0], names[1:]
        tokens = parts.embedding is not None
        array = model.inputs[main]
        if tokens != (array.dtype.kind in "iu"):
            kind = "token ids" if tokens else "float features"
            raise NotAdoptable(f"its first input {main!r} is {array.dtype}, expected {kind}")
        lengths = [n for n in rest if _is_lengths(model.inputs[n])]
        other = [n for n in rest if n not in lengths[:1] and model.inputs[n].any()]
        if other:
            raise NotAdoptable(
                f"forward takes {other[0]!r}, which is neither lengths nor a zero initial state"
            )
        return cls(main, tokens, lengths[0] if lengths else None)

    def unbatched(self, inputs: dict) -> bool:
        """One sequence without a batch axis: (T,) ids or (T, F) features."""
        return inputs[self.main].ndim - (0 if self.tokens else 1) == 1

    def axes_options(self, inputs: dict) -> tuple[str, ...]:
        return ("unbatched",) if self.unbatched(inputs) else ("batch_first", "time_first")

    def fresh_inputs(self, inputs: dict, seed: int) -> dict:
        """Inputs of another length, random but valid; the batch stays (states may fix it)."""
        rng = np.random.default_rng(seed)
        array = inputs[self.main]
        time_axis = 0 if self.unbatched(inputs) else 1
        shape = list(array.shape)
        shape[time_axis] += 3
        if self.tokens:
            fresh = rng.integers(0, int(array.max()) + 1, size=shape).astype(array.dtype)
        else:
            fresh = (rng.standard_normal(shape) * (array.std() or 1) + array.mean()).astype(
                array.dtype
            )
        out = dict(inputs) | {self.main: fresh}
        if self.lengths is not None:
            count = len(inputs[self.lengths])
            lengths = np.sort(rng.integers(1, shape[time_axis] + 1, size=count))[::-1].copy()
            lengths[0] = shape[time_axis]
            out[self.lengths] = lengths.astype(inputs[self.lengths].dtype)
        return out


def _is_lengths(array: np.ndarray) -> bool:
    return array.ndim == 1 and array.dtype.kind in "iu"


@dataclass(frozen=True)
class Candidate:
    """One reading: an edgernn model with the user's weights and how outputs line up."""

    spec: ModelSpec
    state: dict[str, Tensor]
    axes: str
    readout: str  # last | mean | max | steps
    transform: str  # identity | log_softmax | softmax | sigmoid
    swapped: bool = False  # forward concatenates the backward direction's state first

    def describe(self) -> str:
        if self.readout == "steps":
            what = "every step"
        else:
            what = READOUTS[self.readout] + (" (backward first)" if self.swapped else "")
        last = "" if self.transform == "identity" else f", then {self.transform}"
        return f"{what}{last}, {self.axes.replace('_', '-')} input"


def candidates(
    parts: Parts, layout: Layout, inputs: dict, task: str | None, mapping: TokenMap | None
) -> Iterator[Candidate]:
    """Every reading edgernn's models express, the recurrent module's own layout first."""
    options = layout.axes_options(inputs)
    if not parts.batch_first:
        options = options[::-1]
    for axes in options:
        yield from _sequence_candidates(parts, axes, task, mapping)
        yield from _step_candidates(parts, axes, task, mapping)


def _sequence_candidates(parts, axes, task, mapping) -> Iterator[Candidate]:
    outputs = parts.head.out_features
    if task not in (None, "classify", "regress"):
        return
    transforms = TRANSFORMS + (("sigmoid",) if outputs == 1 and task != "regress" else ())
    for transform in transforms:
        kind = task or ("regress" if outputs == 1 and transform == "identity" else "classify")
        if kind == "regress" and transform != "identity":
            continue
        for readout in ("last", "mean", "max"):
            for swapped in (False, True) if parts.bidirectional and readout == "last" else (False,):
                yield _build(parts, kind, axes, readout, transform, swapped, mapping)


def _step_candidates(parts, axes, task, mapping) -> Iterator[Candidate]:
    outputs = parts.head.out_features
    lm = (
        mapping is not None
        and not parts.bidirectional
        and outputs == parts.embedding.num_embeddings
        and task in (None, "lm")
    )
    kinds = (["lm"] if lm else []) + (["tag"] if task in (None, "tag") else [])
    for kind in kinds:
        for transform in TRANSFORMS:
            yield _build(parts, kind, axes, "steps", transform, False, mapping)


def _build(parts: Parts, task, axes, readout, transform, swapped, mapping) -> Candidate:
    head_w, head_b = parts.head.weight.detach().float(), _bias(parts.head)
    if swapped:
        half = parts.hidden
        head_w = torch.cat([head_w[:, half:], head_w[:, :half]], dim=1)
    if transform == "sigmoid":  # one logit z -> two classes [0, z]: softmax gives sigmoid(z)
        head_w = torch.cat([torch.zeros_like(head_w), head_w])
        head_b = torch.cat([torch.zeros_like(head_b), head_b])
    state = {f"encoder.rnn.{name}": value for name, value in recurrent_state(parts).items()}
    vocab_size = 0
    if mapping is not None:
        vocab_size = len(mapping.vocab)
        state["encoder.embedding.weight"] = _rows(parts.embedding.weight.detach(), mapping, 0.0)
        if task == "lm":
            head_w = _rows(head_w, mapping, 0.0)
            head_b = _rows(head_b[:, None], mapping, MASKED_LOGIT)[:, 0]
    state |= {"head.weight": head_w, "head.bias": head_b}
    spec = ModelSpec(
        task=task,
        cell=parts.cell,
        hidden=parts.hidden,
        layers=parts.layers,
        bidirectional=parts.bidirectional,
        embed=parts.embedding.embedding_dim if mapping is not None else 64,
        vocab_size=vocab_size,
        input_size=0 if mapping is not None else parts.input_size,
        num_outputs=head_w.shape[0],
        pooling=readout if readout != "steps" else "last",
        max_len=4096,
    )
    return Candidate(spec, state, axes, readout, transform, swapped)


def _bias(linear) -> Tensor:
    if linear.bias is None:
        return torch.zeros(linear.out_features)
    return linear.bias.detach().float()


def _rows(table: Tensor, mapping: TokenMap, fill: float) -> Tensor:
    # edgernn row j is the user's row source_ids[j]; an added reserved token gets ``fill``.
    rows = [
        table[user_id] if user_id is not None else torch.full_like(table[0], fill)
        for user_id in mapping.source_ids
    ]
    return torch.stack(rows).float()


@torch.no_grad()
def compare(candidate: Candidate, layout: Layout, inputs, expected, mapping) -> float:
    """Max abs difference between the candidate's outputs and ``expected``; inf if misfit."""
    x, lengths, batch, steps = _edgernn_inputs(candidate, layout, inputs, mapping)
    if x is None:
        return float("inf")
    model = build_model(candidate.spec)
    model.load_state_dict(candidate.state)
    got = _transformed(model.eval()(x, lengths), candidate, mapping)
    want = _aligned(expected, got, batch, steps, candidate)
    if want is None:
        return float("inf")
    if candidate.readout == "steps":  # padded steps are nobody's output
        valid = torch.arange(steps)[None, :] < lengths[:, None]
        got, want = got[valid], want[valid]
    return float((got - want).abs().max()) if got.numel() else float("inf")


def _edgernn_inputs(candidate, layout, inputs, mapping):
    x = torch.from_numpy(np.asarray(inputs[layout.main]))
    if layout.tokens:
        table = torch.from_numpy(mapping.lookup())
        if x.min() < 0 or x.max() >= len(table):
            return None, None, 0, 0
        x = table[x.long()]
    else:
        x = x.float()
    if candidate.axes == "unbatched":
        x = x.unsqueeze(0)
    elif candidate.axes == "time_first":
        x = x.transpose(0, 1)
    batch, steps = x.shape[0], x.shape[1]
    lengths = torch.full((batch,), steps, dtype=torch.long)
    if layout.lengths is not None:
        given = torch.as_tensor(np.asarray(inputs[layout.lengths])).long()
        if given.shape != (batch,) or given.min() < 1 or given.max() > steps:
            return None, None, 0, 0
        lengths = given
    return x.contiguous(), lengths, batch, steps


def _transformed(out: Tensor, candidate: Candidate, mapping) -> Tensor:
    if candidate.transform == "log_softmax":
        out = F.log_softmax(out, dim=-1)
    elif candidate.transform == "softmax":
        out = F.softmax(out, dim=-1)
    elif candidate.transform == "sigmoid":
        out = F.softmax(out, dim=-1)[..., 1:]
    if candidate.spec.task == "lm":  # back to the user's column order
        out = out[..., torch.from_numpy(mapping.lookup())]
    return out


def _aligned(expected: Tensor, got: Tensor, batch, steps, candidate) -> Tensor | None:
    if expected.numel() != got.numel():
        return None
    if candidate.readout != "steps":
        return expected.reshape(got.shape)
    width = got.shape[-1]
    batch_major = expected.reshape(batch, steps, width)
    time_major = expected.reshape(steps, batch, width).transpose(0, 1)
    if candidate.axes == "time_first":
        return time_major
    if candidate.axes == "unbatched" or batch == 1:
        return batch_major
    # The user may flatten (B*T, C) in either order; the closer one is the reading.
    options = (batch_major, time_major)
    return min(options, key=lambda option: float((got - option).abs().max()))


__all__ = ["Candidate", "Layout", "candidates", "compare"]
