"""What a user's module is made of, in the terms of edgernn's models, and its weights in ours.

edgernn's models are: an optional ``nn.Embedding``, one stack of ``nn.RNN``/``nn.LSTM``/
``nn.GRU`` layers, and one ``nn.Linear`` head. A user's module fits when its parameters are
exactly such parts: one embedding at most, recurrent modules of one cell, width and direction
stacked one on the next (two ``nn.LSTM(num_layers=1)`` are one 2-layer stack), an optional
``nn.Linear`` before the recurrence on numeric inputs (folded into the first layer's input
weights: the gates are linear in their input, so the fold is exact) and one ``nn.Linear``
head. Modules without parameters (dropout, activations, softmax) are allowed anywhere; the
parity check in ``edgernn.own.adopt`` proves that the way ``forward`` wires the parts is one
edgernn reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from edgernn.errors import EdgeRNNError

CELLS = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn"}
GATE_ROWS = {"lstm": 4, "gru": 3, "rnn": 1}


class NotAdoptable(EdgeRNNError):
    """The module is not one of the recurrent shapes edgernn rebuilds (the message says why)."""


@dataclass(frozen=True)
class Parts:
    """The parameterised pieces of a user's module, in registration order."""

    embedding: nn.Embedding | None
    input_proj: nn.Linear | None  # numeric inputs only: features -> first recurrent layer
    rnns: tuple[nn.RNNBase, ...]  # stacked, each feeding the next
    head: nn.Linear

    @property
    def cell(self) -> str:
        return CELLS[type(self.rnns[0])]

    @property
    def hidden(self) -> int:
        return self.rnns[0].hidden_size

    @property
    def bidirectional(self) -> bool:
        return self.rnns[0].bidirectional

    @property
    def layers(self) -> int:
        return sum(rnn.num_layers for rnn in self.rnns)

    @property
    def batch_first(self) -> bool:
        return self.rnns[0].batch_first

    @property
    def input_size(self) -> int:
        first = self.input_proj or self.rnns[0]
        return first.in_features if isinstance(first, nn.Linear) else first.input_size


def find_parts(module: nn.Module) -> Parts:
    """The module's embedding, recurrent stack and head, or ``NotAdoptable`` saying why."""
    embeddings, rnns, linears = [], [], []
    for name, child in module.named_modules():
        if isinstance(child, nn.Embedding):
            embeddings.append(child)
        elif type(child) in CELLS:
            rnns.append(child)
        elif type(child) is nn.Linear:
            linears.append(child)
        elif own := [key for key, _ in child.named_parameters(recurse=False)]:
            where = f"a {type(child).__name__} ({name})" if name else "parameters of its own"
            raise NotAdoptable(
                f"it has {where}: {', '.join(own)}; edgernn's models have no such layer"
            )
    if not rnns:
        raise NotAdoptable("it has no nn.RNN, nn.LSTM or nn.GRU")
    if len(embeddings) > 1:
        raise NotAdoptable(f"it has {len(embeddings)} embeddings; edgernn's models have one")
    _check_stack(rnns)
    embedding = embeddings[0] if embeddings else None
    if embedding is not None and embedding.embedding_dim != rnns[0].input_size:
        raise NotAdoptable("its embedding width differs from the recurrent input width")
    return Parts(embedding, *_split_linears(linears, rnns, embedding))


def _check_stack(rnns: list[nn.RNNBase]) -> None:
    first = rnns[0]
    for rnn in rnns:
        if getattr(rnn, "nonlinearity", "tanh") != "tanh":
            raise NotAdoptable("it uses a ReLU nn.RNN; edgernn's vanilla RNN cell is tanh")
        if getattr(rnn, "proj_size", 0):
            raise NotAdoptable("it uses an LSTM with proj_size, which edgernn's models lack")
        same = (type(rnn), rnn.hidden_size, rnn.bidirectional, rnn.batch_first) == (
            type(first),
            first.hidden_size,
            first.bidirectional,
            first.batch_first,
        )
        if not same:
            raise NotAdoptable(
                "its recurrent modules differ in cell, width, direction or batch_first; "
                "edgernn stacks identical layers"
            )
    width = first.hidden_size * (2 if first.bidirectional else 1)
    if any(rnn.input_size != width for rnn in rnns[1:]):
        raise NotAdoptable("its recurrent modules do not feed one into the next")


def _split_linears(
    linears: list[nn.Linear], rnns: list[nn.RNNBase], embedding: nn.Embedding | None
) -> tuple[nn.Linear | None, tuple[nn.RNNBase, ...], nn.Linear]:
    width = rnns[0].hidden_size * (2 if rnns[0].bidirectional else 1)
    if len(linears) == 1 and linears[0].in_features == width:
        return None, tuple(rnns), linears[0]
    if len(linears) == 2 and embedding is None:
        for proj, head in (linears, linears[::-1]):
            if proj.out_features == rnns[0].input_size and head.in_features == width:
                return proj, tuple(rnns), head
    raise NotAdoptable(
        f"its linear layers are {_shapes(linears)}; edgernn's models read the recurrent "
        f"features ({width} wide) with one nn.Linear (and numeric inputs may pass one before)"
    )


def _shapes(linears: list[nn.Linear]) -> str:
    return ", ".join(f"{layer.in_features}->{layer.out_features}" for layer in linears) or "none"


@torch.no_grad()
def recurrent_state(parts: Parts) -> dict[str, Tensor]:
    """The stack's weights renamed to one ``nn.<cell>`` of ``parts.layers`` layers.

    A missing bias (``bias=False``) becomes zeros; an input projection is folded into the
    first layer (``W_ih @ (A x + a) + b_ih = (W_ih A) x + (W_ih a + b_ih)``).
    """
    state, offset = {}, 0
    for rnn in parts.rnns:
        for layer in range(rnn.num_layers):
            for suffix in ("", "_reverse")[: 2 if rnn.bidirectional else 1]:
                source, target = f"l{layer}{suffix}", f"l{layer + offset}{suffix}"
                state |= _layer_weights(rnn, source, target)
        offset += rnn.num_layers
    if parts.input_proj is not None:
        proj = parts.input_proj
        proj_bias = proj.bias if proj.bias is not None else torch.zeros(proj.out_features)
        for suffix in ("", "_reverse")[: 2 if parts.bidirectional else 1]:
            weight = state[f"weight_ih_l0{suffix}"]
            state[f"bias_ih_l0{suffix}"] = state[f"bias_ih_l0{suffix}"] + weight @ proj_bias
            state[f"weight_ih_l0{suffix}"] = weight @ proj.weight
    return state


def _layer_weights(rnn: nn.RNNBase, source: str, target: str) -> dict[str, Tensor]:
    weights = {f"{kind}_{target}": getattr(rnn, f"{kind}_{source}") for kind in ("weight_ih",)}
    weights[f"weight_hh_{target}"] = getattr(rnn, f"weight_hh_{source}")
    rows = GATE_ROWS[CELLS[type(rnn)]] * rnn.hidden_size
    for kind in ("bias_ih", "bias_hh"):
        bias = getattr(rnn, f"{kind}_{source}", None) if rnn.bias else None
        weights[f"{kind}_{target}"] = bias if bias is not None else torch.zeros(rows)
    return {name: tensor.detach().clone().float() for name, tensor in weights.items()}
