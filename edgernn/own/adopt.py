"""Adoption: rebuild a user's recurrent module as an edgernn model, proved equal by parity.

``find_parts`` says what the module is made of; the wiring of ``forward`` (which step or state
it reads, whether it pools, transposes or applies a softmax) is not visible from the module
tree, so each reading edgernn's models can express is built with the user's weights and run
on the example: the one whose outputs equal the user's (max abs difference <= 1e-5) is the
adoption, then checked again on inputs of other sizes. Nothing is guessed: a module no reading
matches is ``NotAdoptable``, with the reason.

Example::

    adopted = adopt(OwnModel.prepare(module, "inputs.npz"), task="classify")
    adopted.checkpoint        # an edgernn Checkpoint: compress, export, bench as usual
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from edgernn.checkpoint import Checkpoint
from edgernn.config import ModelSpec
from edgernn.data.meta import DataMeta
from edgernn.errors import EdgeRNNError
from edgernn.own.load import OwnModel, flatten_outputs, ids_lists_as_tensors, run_forward
from edgernn.own.parts import NotAdoptable, find_parts
from edgernn.own.readout import Candidate, Layout, candidates, compare
from edgernn.own.vocab import TokenMap, labels_list, token_map
from edgernn.text import TextRules

PARITY = 1e-5  # max abs difference between the user's outputs and the adopted model's
ADOPTABLE_TASKS = ("classify", "regress", "tag", "lm")


@dataclass(frozen=True)
class Adoption:
    """An edgernn checkpoint holding a user's weights, and the proof that it is the same."""

    checkpoint: Checkpoint
    readout: str  # how forward reads the recurrence, in words
    parity: float  # on the example
    fresh_parity: float | None  # on inputs of other sizes; None when forward refused them
    tokens: TokenMap | None = None  # user id -> edgernn id, for token models
    notes: list[str] = field(default_factory=list)


def adopt(
    model: OwnModel,
    task: str | None = None,
    vocab: object = None,
    labels: object = None,
    tokens: str | None = None,
) -> Adoption:
    """The edgernn model equal to ``model.module``, or ``NotAdoptable`` saying why not.

    Args:
        model: the user's module with its bound example inputs.
        task: ``classify``/``regress``/``tag``/``lm``; None infers it from the outputs.
        vocab: the user's vocabulary (token -> id, or tokens by id) for token models.
        labels: class or tag names in output order (or name -> id).
        tokens: ``char`` or ``word``; None infers it from the vocabulary.
    """
    if task is not None and task not in ADOPTABLE_TASKS:
        raise NotAdoptable(f"edgernn adopts {', '.join(ADOPTABLE_TASKS)} models, not {task}")
    parts = find_parts(model.module)
    layout = Layout.of(model, parts)
    mapping = None
    if parts.embedding is not None:
        mapping = token_map(vocab, parts.embedding.num_embeddings, parts.embedding.padding_idx)
    expected = _first_output(model, model.inputs)
    closest = (float("inf"), "none applies")
    for candidate in candidates(parts, layout, model.inputs, task, mapping):
        diff = compare(candidate, layout, model.inputs, expected, mapping)
        if diff <= PARITY:
            return _adoption(model, candidate, layout, diff, mapping, labels, tokens)
        closest = min(closest, (diff, candidate.describe()))
    raise NotAdoptable(
        "none of the readings edgernn's models have gives its outputs (closest: "
        f"{closest[1]}, max abs difference {closest[0]:.2g})"
    )


def _first_output(model: OwnModel, inputs: dict) -> torch.Tensor:
    name, tensor = flatten_outputs(ids_lists_as_tensors(run_forward(model.module, inputs)))[0]
    if not tensor.is_floating_point():
        raise NotAdoptable(f"its first output {name!r} is {tensor.dtype}, not scores or values")
    return tensor.float()


def _adoption(model, candidate: Candidate, layout, diff, mapping, labels, tokens) -> Adoption:
    notes = []
    fresh = _fresh_parity(model, candidate, layout, mapping)
    if fresh is None:
        notes.append(
            "its forward refused inputs of other sizes, so parity was checked on the example "
            "only; the adopted model takes any batch and length"
        )
    elif fresh > PARITY:
        raise NotAdoptable(
            f"it matches on the example but not on inputs of other sizes (max abs difference "
            f"{fresh:.2g}): forward depends on the example's shape"
        )
    meta = adoption_meta(candidate.spec, model, mapping, labels, tokens)
    state = {name: tensor.detach().clone() for name, tensor in candidate.state.items()}
    record = {"adopted_from": {"class": model.class_name, "source": model.source}}
    record["adopted_from"] |= {"readout": candidate.describe(), "parity": diff, "fresh": fresh}
    checkpoint = Checkpoint(candidate.spec, meta, state, compression=record)
    return Adoption(checkpoint, candidate.describe(), diff, fresh, mapping, notes)


def _fresh_parity(model: OwnModel, candidate: Candidate, layout, mapping) -> float | None:
    inputs = layout.fresh_inputs(model.inputs, seed=0)
    try:
        expected = _first_output(model, inputs)
    except EdgeRNNError:  # forward may fix a size (run_forward says so); the example holds
        return None
    return compare(candidate, layout, inputs, expected, mapping)


def adoption_meta(spec: ModelSpec, model: OwnModel, mapping, labels, tokens) -> DataMeta:
    """The ``DataMeta`` a user's model reads its data with: its vocabulary in edgernn's
    layout (``mapping``), its labels, identity text rules and scaling (adopted and black-box
    teachers alike)."""
    labels = labels_list(labels, spec.num_outputs) if spec.task in ("classify", "tag") else None
    if mapping is None:
        # The user's model reads raw features: scaling by identity statistics keeps them raw.
        norm = {"x_mean": [0.0] * spec.input_size, "x_std": [1.0] * spec.input_size}
        if spec.task == "regress":
            norm |= {"y_mean": [0.0] * spec.num_outputs, "y_std": [1.0] * spec.num_outputs}
        return DataMeta(spec.task, None, None, None, labels, norm, spec.input_size, "")
    kind = tokens or _tokenization(mapping.vocab)
    # The user's own tokenizer is unknown: no NFC, case or punctuation rule is guessed, text
    # is only cut at whitespace (or into code points), and the manifest says so.
    rules = TextRules(kind).to_manifest()
    return DataMeta(spec.task, kind, list(mapping.vocab), None, labels, None, 0, "", rules)


def _tokenization(vocab: list[str]) -> str:
    words = [token for token in vocab[4:] if not token.startswith("<id ")]
    return "char" if words and all(len(token) == 1 for token in words) else "word"


def describe_adoption(adoption: Adoption) -> str:
    """One line for the terminal and the report notes."""
    spec = adoption.checkpoint.spec
    shape = f"{'bi' if spec.bidirectional else ''}{spec.cell} {spec.layers}x{spec.hidden}"
    fresh = "" if adoption.fresh_parity is None else f", {adoption.fresh_parity:.1g} on new sizes"
    return (
        f"adopted as an edgernn {spec.task} model ({shape}, {adoption.readout}); parity "
        f"{adoption.parity:.1g} on the example{fresh}"
    )


__all__ = ["PARITY", "Adoption", "NotAdoptable", "adopt", "describe_adoption"]
