"""Physically remove hidden units: slice every weight that makes or reads them.

The new weights are cut out of the old state_dict and loaded (strictly) into a fresh
``build_model(spec with the smaller hidden)``, so the result is an ordinary dense model that
saves, loads and exports like any other; ``load_state_dict`` also checks every shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import torch
from torch import Tensor, nn

from edgernn.config import ModelSpec
from edgernn.errors import EdgeRNNError
from edgernn.models import build_model
from edgernn.prune.importance import weight_importance
from edgernn.prune.units import GATES, check_keep, group_name, select_units, stacks, suffix

# state_dict key -> the (dim, kept indices) cuts applied to that tensor, in order
Plan = dict[str, list[tuple[int, Tensor]]]


def shrink_hidden_units(
    model: nn.Module, keep: int | Mapping[str, Sequence[int] | Tensor]
) -> nn.Module:
    """A smaller dense copy of ``model`` holding only the kept hidden units.

    A unit leaves every gate block of its layer (i, f, g, o for LSTM; r, z, n for GRU), and
    every reader of it is rewired: the next layer's input columns (forward and backward
    halves), the head, and for seq2seq the bridge, attention, decoder input, Luong
    ``combine`` and output layer. Before any fine-tuning the result computes exactly what
    ``model`` computes with the removed units held at zero.

    Args:
        model: an edgernn zoo model (it has ``.spec``); not modified.
        keep: units kept per group, chosen by weight norm (``unit_importance``); or
            ``{group: unit indices}`` for every name in ``unit_groups(model.spec)``.

    Returns:
        ``build_model(spec)`` with ``spec.hidden`` = units kept, in ``model``'s train/eval mode.

    Example::

        small = shrink_hidden_units(model, keep=model.spec.hidden // 2)
    """
    spec = _spec_of(model)
    if isinstance(keep, int):
        if not 1 <= keep <= spec.hidden:
            raise EdgeRNNError(f"keep must be in 1..{spec.hidden} hidden units, got {keep}")
        keep = select_units(spec, weight_importance(model), keep)
    chosen = check_keep(model, keep)
    state = model.state_dict()
    plan = _plan(spec, chosen)
    assert set(plan) <= set(state), sorted(set(plan) - set(state))
    new_state = {name: _cut(tensor, plan.get(name, [])) for name, tensor in state.items()}
    small = build_model(replace(spec, hidden=len(next(iter(chosen.values())))))
    small.load_state_dict(new_state)
    return small.to(next(model.parameters()).device).train(model.training)


def _spec_of(model: nn.Module) -> ModelSpec:
    spec = getattr(model, "spec", None)
    if not isinstance(spec, ModelSpec):
        raise EdgeRNNError(
            "structured pruning needs an edgernn model (built from a ModelSpec); use "
            "unstructured pruning for other modules"
        )
    return spec


def _cut(tensor: Tensor, cuts: list[tuple[int, Tensor]]) -> Tensor:
    for dim, index in cuts:
        tensor = tensor.index_select(dim, index.to(tensor.device))
    return tensor.clone()


def _gate_rows(index: Tensor, hidden: int, gates: int) -> Tensor:
    """Row indices of the kept units in each of the ``gates`` stacked gate blocks."""
    return torch.cat([index + gate * hidden for gate in range(gates)])


def _concat(indices: list[Tensor], width: int) -> Tensor:
    """Indices into a concatenation of parts of ``width`` each, e.g. [forward; backward]."""
    return torch.cat([index + part * width for part, index in enumerate(indices)])


def _per_layer(spec: ModelSpec, chosen: dict[str, Tensor], stack: str, dirs: int) -> list:
    return [
        [chosen[group_name(stack, layer, d)] for d in range(dirs)] for layer in range(spec.layers)
    ]


def _stack_plan(
    spec: ModelSpec, stack: str, units: list[list[Tensor]], first_inputs: Tensor | None
) -> Plan:
    plan: Plan = {}
    hidden, gates = spec.hidden, GATES[spec.cell]
    for layer, directions in enumerate(units):
        # Layer 0 reads the embedding (cut only where the Bahdanau context joins it);
        # deeper layers read the layer below, forward and backward halves concatenated.
        inputs = first_inputs if layer == 0 else _concat(units[layer - 1], hidden)
        for direction, index in enumerate(directions):
            name = f"{stack}.{{}}{suffix(layer, direction)}"
            rows = [(0, _gate_rows(index, hidden, gates))]
            plan[name.format("weight_ih")] = rows + ([] if inputs is None else [(1, inputs)])
            plan[name.format("weight_hh")] = rows + [(1, index)]
            plan[name.format("bias_ih")] = rows
            plan[name.format("bias_hh")] = rows
    return plan


def _plan(spec: ModelSpec, chosen: dict[str, Tensor]) -> Plan:
    encoder = _per_layer(spec, chosen, *stacks(spec)[0])
    plan = _stack_plan(spec, "encoder.rnn", encoder, None)
    top = _concat(encoder[-1], spec.hidden)  # columns of the encoder outputs that remain
    if spec.task != "seq2seq":
        return plan | {"head.weight": [(1, top)]}
    return plan | _seq2seq_plan(spec, chosen, encoder, top)


def _seq2seq_plan(
    spec: ModelSpec, chosen: dict[str, Tensor], encoder: list[list[Tensor]], memory: Tensor
) -> Plan:
    hidden, memory_size = spec.hidden, spec.hidden * spec.directions
    decoder = chosen[group_name("decoder", 0, 0)]  # the same in every layer (tied)
    # The bridge reads one encoder layer's [forward; backward] final state (the same
    # columns in every layer, tied) and writes the decoder's initial state.
    bridge = [(0, decoder), (1, _concat(encoder[0], hidden))]
    plan: Plan = {}
    for part in range(2 if spec.cell == "lstm" else 1):
        plan[f"bridge.{part}.weight"] = bridge
        plan[f"bridge.{part}.bias"] = bridge[:1]
    embed = torch.arange(spec.embed)
    if spec.attention == "bahdanau":
        first = torch.cat([embed, spec.embed + memory])  # decoder input: [embedding; context]
        scoring = chosen["attention"]
        plan["attention.query_proj.weight"] = [(0, scoring), (1, decoder)]
        plan["attention.key_proj.weight"] = [(0, scoring), (1, memory)]
        plan["attention.key_proj.bias"] = [(0, scoring)]
        plan["attention.score.weight"] = [(1, scoring)]
        plan["out.weight"] = [(1, torch.cat([decoder, hidden + memory]))]  # [h_t; context]
    else:
        first = None
        combine = chosen["combine"]
        plan["attention.key_proj.weight"] = [(0, decoder), (1, memory)]  # q^T W k, q = h_t
        plan["combine.weight"] = [(0, combine), (1, torch.cat([memory, memory_size + decoder]))]
        plan["combine.bias"] = [(0, combine)]
        plan["out.weight"] = [(1, combine)]
    units = _per_layer(spec, chosen, "decoder", 1)
    return plan | _stack_plan(spec, "decoder", units, first)
