"""How much each hidden unit matters: weight norms, or mean |activation| on a data sample."""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from edgernn.data import TaskData, iterate_batches
from edgernn.data.batching import IGNORE_INDEX
from edgernn.errors import EdgeRNNError
from edgernn.models.search import eval_mode
from edgernn.prune.units import group_name, stacks, suffix, unit_groups

ACTIVATION_SAMPLE = 512  # training examples read for activation importance: enough for a mean
ACTIVATION_BATCH = 128


def unit_importance(
    model: nn.Module, kind: str = "norm", data: TaskData | None = None
) -> dict[str, Tensor]:
    """One importance score per hidden unit, for every group of ``unit_groups(model.spec)``.

    Args:
        model: an edgernn zoo model.
        kind: ``norm``: L2 norm of the unit's weights (its rows in every gate block of
            weight_ih and weight_hh, and its weight_hh column); ``activation``: mean |h| of
            the unit over the valid steps of up to 512 training examples. Attention and
            Luong combine units are always ranked by weight norm: they are not recurrent
            state, and their norms already cover what they read and feed.
        data: needed for ``activation``.

    Returns:
        ``{group: (hidden,) float tensor}``; larger means more important.

    Example::

        scores = unit_importance(model, "activation", data)
    """
    if kind == "norm":
        return weight_importance(model)
    if kind != "activation":
        raise EdgeRNNError(f"unknown importance {kind!r}; choose norm or activation")
    if data is None:
        raise EdgeRNNError("activation importance needs data to run the model on")
    return weight_importance(model) | activation_importance(model, data)


@torch.no_grad()
def weight_importance(model: nn.Module) -> dict[str, Tensor]:
    """Weight-norm importance of every unit group (see ``unit_importance``)."""
    spec, scores = model.spec, {}
    for stack, directions in stacks(spec):
        rnn = model.get_submodule(stack)
        for layer in range(spec.layers):
            for direction in range(directions):
                w_ih = getattr(rnn, "weight_ih" + suffix(layer, direction)).float()
                w_hh = getattr(rnn, "weight_hh" + suffix(layer, direction)).float()
                rows = w_ih.pow(2).sum(1) + w_hh.pow(2).sum(1)  # (gates * hidden,)
                incoming = rows.view(-1, spec.hidden).sum(0)
                scores[group_name(stack, layer, direction)] = (incoming + w_hh.pow(2).sum(0)).sqrt()
    if spec.task == "seq2seq":
        scores[unit_groups(spec)[-1]] = _aux_norms(model).sqrt()
    return {name: score.cpu() for name, score in scores.items()}


def _aux_norms(model: nn.Module) -> Tensor:
    """Squared norms of the Bahdanau scoring units or the Luong attentional units."""
    if model.spec.attention == "bahdanau":
        attention = model.attention
        query, key = attention.query_proj.weight, attention.key_proj.weight
        return query.pow(2).sum(1) + key.pow(2).sum(1) + attention.score.weight.pow(2).sum(0)
    return model.combine.weight.pow(2).sum(1) + model.out.weight.pow(2).sum(0)


@torch.no_grad()
def activation_importance(model: nn.Module, data: TaskData) -> dict[str, Tensor]:
    """Mean |h| of every recurrent unit over the valid steps of a training sample."""
    spec, examples = model.spec, data.splits["train"][:ACTIVATION_SAMPLE]
    device = next(model.parameters()).device
    sums: dict[str, Tensor] = {}
    counts: dict[str, int] = {}
    with eval_mode(model):
        for batch in iterate_batches(examples, spec.task, ACTIVATION_BATCH):
            batch = batch.to(device)
            for name, (total, count) in _batch_sums(model, batch).items():
                sums[name] = sums.get(name, 0) + total
                counts[name] = counts.get(name, 0) + count
    return {name: (sums[name] / max(counts[name], 1)).cpu() for name in sums}


def _batch_sums(model: nn.Module, batch) -> dict[str, tuple[Tensor, int]]:
    spec, encoder = model.spec, model.encoder
    embedded = encoder.embedding(batch.inputs) if encoder.embedding is not None else batch.inputs
    packed = pack_padded_sequence(embedded, batch.lengths, batch_first=True, enforce_sorted=False)
    found = {}
    for layer, outputs in enumerate(layer_outputs(encoder.rnn, packed)):
        # Packed data holds the valid steps only, so padding never dilutes the mean.
        for direction, part in enumerate(outputs.abs().split(spec.hidden, dim=-1)):
            found[group_name("encoder.rnn", layer, direction)] = (part.sum(0), part.size(0))
    if spec.task == "seq2seq":
        found |= _decoder_sums(model, batch)
    return found


def _decoder_sums(model: nn.Module, batch) -> dict[str, tuple[Tensor, int]]:
    # decode_step returns every decoder layer's new h, so teacher forcing step by step
    # yields all layers' activations; padded target steps are left out.
    memory, mask, state = model.encode(batch.inputs, batch.lengths)
    total, count = 0, 0
    for step in range(batch.decoder_inputs.size(1)):
        _, state = model.decode_step(batch.decoder_inputs[:, step], state, memory, mask)
        valid = batch.targets[:, step] != IGNORE_INDEX
        total = total + state[0][:, valid].abs().sum(1)  # (layers, hidden)
        count += int(valid.sum())
    return {group_name("decoder", layer, 0): (total[layer], count) for layer in range(len(total))}


def layer_outputs(rnn: nn.RNNBase, packed) -> list[Tensor]:
    """Every layer's outputs over the valid steps, (steps, directions * hidden) each.

    ``nn.LSTM`` returns only the top layer, so the stack is run one layer at a time with
    single-layer copies of its weights (eval mode: no dropout between layers).
    """
    outputs = []
    for layer in range(rnn.num_layers):
        packed, _ = _single_layer(rnn, layer)(packed)
        outputs.append(packed.data)
    return outputs


def _single_layer(rnn: nn.RNNBase, layer: int) -> nn.RNNBase:
    pattern = re.compile(rf"_l{layer}(?=(_reverse)?$)")
    state = {pattern.sub("_l0", k): v for k, v in rnn.state_dict().items() if pattern.search(k)}
    width = rnn.input_size if layer == 0 else rnn.hidden_size * (1 + rnn.bidirectional)
    extra = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
    single = type(rnn)(width, rnn.hidden_size, bidirectional=rnn.bidirectional, **extra)
    single.load_state_dict(state)
    return single.to(next(rnn.parameters()).device).eval()
