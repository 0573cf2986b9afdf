"""Hidden-unit groups of a zoo model, and which of them must keep the same units.

A *group* is one set of ``spec.hidden`` units that can be pruned together: one direction of
one recurrent layer (``encoder.rnn.l0``, ``encoder.rnn.l0_reverse``, ``decoder.l1``), plus,
for seq2seq, the Bahdanau scoring layer (``attention``) or the Luong attentional layer
(``combine``), whose widths ``build_model`` also ties to ``spec.hidden``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from edgernn.config import ModelSpec
from edgernn.errors import EdgeRNNError

GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # gate blocks stacked in weight_ih/weight_hh rows


def suffix(layer: int, direction: int) -> str:
    """PyTorch's parameter suffix for one layer and direction, e.g. ``_l1_reverse``."""
    return f"_l{layer}" + ("_reverse" if direction else "")


def stacks(spec: ModelSpec) -> list[tuple[str, int]]:
    """``(module name, directions)`` of every recurrent stack of the model."""
    encoder = [("encoder.rnn", spec.directions)]
    return encoder + [("decoder", 1)] if spec.task == "seq2seq" else encoder


def group_name(stack: str, layer: int, direction: int) -> str:
    return stack + "." + suffix(layer, direction)[1:]


def unit_groups(spec: ModelSpec) -> list[str]:
    """Names of every group of hidden units, recurrent ones first."""
    names = [
        group_name(stack, layer, direction)
        for stack, directions in stacks(spec)
        for layer in range(spec.layers)
        for direction in range(directions)
    ]
    if spec.task == "seq2seq":
        names.append("attention" if spec.attention == "bahdanau" else "combine")
    return names


def tied_groups(spec: ModelSpec) -> list[list[str]]:
    """Groups that must keep the same units, each list chosen as one.

    In seq2seq one bridge Linear maps every encoder layer's final state to the same layer of
    the decoder: its columns are shared by all encoder layers (per direction) and its rows by
    all decoder layers, so those layers must keep the same unit indices. Elsewhere each layer
    and direction chooses its own units (only their number is shared, as ModelSpec has one
    ``hidden``).
    """
    if spec.task != "seq2seq":
        return [[name] for name in unit_groups(spec)]
    tied = [
        [group_name(stack, layer, direction) for layer in range(spec.layers)]
        for stack, directions in stacks(spec)
        for direction in range(directions)
    ]
    return tied + [[unit_groups(spec)[-1]]]


def select_units(spec: ModelSpec, importance: Mapping[str, Tensor], keep: int) -> dict[str, Tensor]:
    """Keep the ``keep`` most important units of every group (tied groups by summed score).

    Args:
        spec: the model's spec.
        importance: one score per unit for every group (see ``unit_importance``).
        keep: units left in every group.

    Returns:
        ``{group: sorted int64 indices}`` for ``shrink_hidden_units``.
    """
    chosen = {}
    for tie in tied_groups(spec):
        score = sum(importance[name].detach().float().cpu() for name in tie)
        index = score.topk(keep).indices.sort().values
        chosen.update({name: index for name in tie})
    return chosen


def check_keep(model: nn.Module, keep: Mapping[str, Sequence[int] | Tensor]) -> dict[str, Tensor]:
    """Validate a ``{group: unit indices}`` choice; return it as sorted int64 tensors."""
    spec = model.spec
    expected = unit_groups(spec)
    if set(keep) != set(expected):
        missing, unknown = set(expected) - set(keep), set(keep) - set(expected)
        raise EdgeRNNError(
            f"keep must name every unit group {expected}; missing {sorted(missing)}, "
            f"unknown {sorted(unknown)}"
        )
    chosen = {name: _indices(name, keep[name], spec.hidden) for name in expected}
    sizes = {len(index) for index in chosen.values()}
    if len(sizes) != 1:
        raise EdgeRNNError(
            f"every group must keep the same number of units (ModelSpec has one hidden size), "
            f"got {sorted(sizes)}"
        )
    for tie in tied_groups(spec):
        if any(not torch.equal(chosen[name], chosen[tie[0]]) for name in tie):
            raise EdgeRNNError(
                f"{', '.join(tie)} share the seq2seq bridge and must keep the same units"
            )
    return chosen


def _indices(name: str, values: Sequence[int] | Tensor, hidden: int) -> Tensor:
    index = torch.as_tensor(values, dtype=torch.long).flatten().sort().values
    if index.numel() == 0:
        raise EdgeRNNError(f"{name}: keep at least one unit")
    if index.min() < 0 or index.max() >= hidden:
        raise EdgeRNNError(f"{name}: unit indices must be in 0..{hidden - 1}")
    if index.unique().numel() != index.numel():
        raise EdgeRNNError(f"{name}: unit indices must not repeat")
    return index
