"""A seq2seq model's weights as the C target lays them out, and their int8 rows.

A ``Seq2Seq`` (``edgernn.models.seq2seq``) is read into the matrices model.c holds, in
PyTorch's own layouts (gate blocks stacked along the rows, as ``edgernn.c.weights``). int8 is
the same per-row symmetric int8 as the other tasks (``quantize_rows``), for every matrix:
embeddings, recurrent weights, bridge, attention and output layers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from edgernn.c.weights import Linear, quantize_rows
from edgernn.config import ModelSpec


@dataclass(frozen=True)
class Seq2SeqC:
    """Everything a seq2seq model.c holds: the spec and its matrices, named as in model.c."""

    spec: ModelSpec
    src_embedding: Linear  # (source vocab, embed), no bias
    tgt_embedding: Linear  # (target vocab, embed), no bias
    enc_cells: list[tuple[Linear, Linear]]  # (input, recurrent) per layer and direction
    dec_cells: list[tuple[Linear, Linear]]  # (input, recurrent) per decoder layer
    bridge: list[Linear]  # h (and c for LSTM): encoder final state -> decoder start
    attn_key: Linear  # applied to every memory row once per source
    attn_query: Linear | None  # Bahdanau only
    attn_score: Linear | None  # Bahdanau only: v, one row
    combine: Linear | None  # Luong only: W_c over [context; h_t]
    out: Linear

    @property
    def bahdanau(self) -> bool:
        return self.attn_query is not None

    @property
    def width(self) -> int:
        """Width of one memory row: hidden units times encoder directions."""
        return self.spec.hidden * self.spec.directions

    def linears(self) -> list[Linear]:
        """Every matrix, in the order model.c lays them out."""
        found = [self.src_embedding, self.tgt_embedding]
        found += [m for cell in self.enc_cells + self.dec_cells for m in cell]
        found += [*self.bridge, self.attn_key, self.attn_query, self.attn_score, self.combine]
        return [m for m in [*found, self.out] if m is not None]


def seq2seq_weights(model: nn.Module) -> Seq2SeqC:
    """Read the matrices of a seq2seq zoo model into the C layout; ``model`` is not modified."""
    spec = model.spec
    encoder, decoder = model.encoder.rnn, model.decoder
    enc_cells = [
        _cell(encoder, f"enc_l{layer}_{tag}", f"l{layer}{suffix}")
        for layer in range(spec.layers)
        for suffix, tag in (("", "fwd"), ("_reverse", "bwd"))[: spec.directions]
    ]
    dec_cells = [_cell(decoder, f"dec_l{layer}", f"l{layer}") for layer in range(spec.layers)]
    bridge = [
        _read(f"bridge_{part}", b.weight, b.bias)
        for part, b in zip("hc", model.bridge, strict=False)
    ]
    attention = model.attention
    bahdanau = model.bahdanau
    key = attention.key_proj
    return Seq2SeqC(
        spec=spec,
        src_embedding=_read("src_embedding", model.encoder.embedding.weight, None),
        tgt_embedding=_read("tgt_embedding", model.embedding.weight, None),
        enc_cells=enc_cells,
        dec_cells=dec_cells,
        bridge=bridge,
        attn_key=_read("attn_key", key.weight, key.bias),
        attn_query=_read("attn_query", attention.query_proj.weight, None) if bahdanau else None,
        attn_score=_read("attn_score", attention.score.weight, None) if bahdanau else None,
        combine=None if bahdanau else _read("combine", model.combine.weight, model.combine.bias),
        out=_read("out", model.out.weight, model.out.bias),
    )


def seq2seq_int8_reference(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose matrices hold their dequantized int8 rows: what int8 C computes.

    Every 2-D parameter of a seq2seq model is a matrix the C code stores as int8 rows
    (embeddings, recurrent and linear weights); biases are 1-D and stay float.
    """
    model = copy.deepcopy(model).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2:
                q, scale = quantize_rows(parameter.detach().cpu().float().numpy())
                dequantized = q.astype(np.float32) * scale[:, None]
                parameter.copy_(torch.from_numpy(dequantized))
    return model


def seq2seq_arrays(model: Seq2SeqC, int8: bool) -> list[tuple[str, str, np.ndarray]]:
    """Every array model.c holds, as ``(C type, name, values)``, in file order."""
    arrays = []
    for linear in model.linears():
        if int8:
            q, scale = quantize_rows(linear.weight)
            arrays += [("int8_t", f"{linear.name}_w", q), ("float", f"{linear.name}_scale", scale)]
        else:
            arrays.append(("weight", f"{linear.name}_w", linear.weight))
        if linear.bias is not None:
            arrays.append(("float", f"{linear.name}_b", linear.bias))
    return arrays


def _cell(rnn: nn.RNNBase, name: str, suffix: str) -> tuple[Linear, Linear]:
    return tuple(
        _read(
            f"{name}_{kind}",
            getattr(rnn, f"weight_{kind}_{suffix}"),
            getattr(rnn, f"bias_{kind}_{suffix}"),
        )
        for kind in ("ih", "hh")
    )


def _read(name: str, weight: torch.Tensor, bias: torch.Tensor | None) -> Linear:
    def array(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().cpu().float().numpy().copy()

    return Linear(name, array(weight), None if bias is None else array(bias))
