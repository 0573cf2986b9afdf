"""A zoo model's weights as the C target lays them out, and their int8 rows.

The recurrent weights are read from ``nn.LSTM/GRU/RNN`` in PyTorch's own layout (gate blocks
i, f, g, o for LSTM and r, z, n for GRU, stacked along the rows), so the C engine applies
exactly the formulas PyTorch documents. int8 is per output row and symmetric: each row keeps
``round(w / s)`` with ``s = max|row| / 127``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from edgernn.config import GATES, ModelSpec
from edgernn.errors import EdgeRNNError

INT8_MAX = 127


@dataclass(frozen=True)
class Linear:
    """``y = W x (+ b)``: one matrix the C engine multiplies by, named as in model.c."""

    name: str
    weight: np.ndarray  # float32 (rows, cols)
    bias: np.ndarray | None  # float32 (rows,)


@dataclass(frozen=True)
class CModel:
    """Everything model.c holds: the spec, the matrices and the data scaling."""

    spec: ModelSpec
    cells: list[tuple[Linear, Linear]]  # (input, recurrent) per layer and direction
    head: Linear
    embedding: Linear | None  # token models: (vocab, embed) rows, no bias
    x_norm: tuple[np.ndarray, np.ndarray] | None  # numeric models: per-feature mean, std
    y_norm: tuple[np.ndarray, np.ndarray] | None  # regress: per-target mean, std

    @property
    def features(self) -> int:
        """Width of the first layer's input: the embedding width or the feature count."""
        return self.spec.embed if self.spec.vocab_size else self.spec.input_size

    @property
    def gates(self) -> int:
        return GATES[self.spec.cell]


def check_supported(spec: ModelSpec) -> None:
    """Refuse, in one line, a model the C target cannot write yet (seq2seq: edgernn.c.seq2seq)."""
    if spec.embed_rank or spec.embed_buckets:
        kind = "low-rank" if spec.embed_rank else "hashed"
        raise EdgeRNNError(
            f"the C target supports plain embedding tables only, this model has a {kind} "
            "embedding; export it to ONNX (--target onnx)"
        )


def model_weights(model: nn.Module, norm: dict | None) -> CModel:
    """Read the matrices of a zoo model (``build_model``) into the C layout.

    Args:
        model: a classify/regress/tag/lm zoo model; not modified.
        norm: the data meta's scaling (``x_mean``... lists), or None for none.

    Returns:
        The ``CModel`` that ``edgernn.c.codegen`` writes out.
    """
    spec = model.spec
    check_supported(spec)
    rnn = model.encoder.rnn
    cells = []
    for layer in range(spec.layers):
        for suffix, tag in (("", "fwd"), ("_reverse", "bwd"))[: spec.directions]:
            cells.append(
                tuple(
                    _linear(
                        f"layer{layer}_{tag}_{kind}",
                        getattr(rnn, f"weight_{kind}_l{layer}{suffix}"),
                        getattr(rnn, f"bias_{kind}_l{layer}{suffix}"),
                    )
                    for kind in ("ih", "hh")
                )
            )
    embedding = None
    if spec.vocab_size:
        embedding = _linear("embedding", model.encoder.embedding.weight, None)
    return CModel(
        spec=spec,
        cells=cells,
        head=_linear("head", model.head.weight, model.head.bias),
        embedding=embedding,
        x_norm=_norm(norm, "x") if not spec.vocab_size else None,
        y_norm=_norm(norm, "y") if spec.task == "regress" else None,
    )


def quantize_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: ``(q, scale)`` with ``weight ~= q * scale[:, None]``.

    A row of zeros keeps scale 1 (and zeros), so dequantizing never divides by zero.
    """
    peak = np.abs(weight).max(axis=1)
    scale = np.where(peak > 0, peak / INT8_MAX, 1.0).astype(np.float32)
    q = np.clip(np.rint(weight / scale[:, None]), -INT8_MAX, INT8_MAX).astype(np.int8)
    return q, scale


def int8_reference(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose C-quantized matrices hold their dequantized int8 values.

    This is the model the int8 C code computes (up to float rounding): the parity reference.
    """
    model = copy.deepcopy(model).eval()
    rnn, tensors = model.encoder.rnn, [model.head.weight]
    tensors += [p for name, p in rnn.named_parameters() if name.startswith("weight_")]
    if model.spec.vocab_size:
        tensors.append(model.encoder.embedding.weight)
    with torch.no_grad():
        for tensor in tensors:
            q, scale = quantize_rows(tensor.numpy())
            tensor.copy_(torch.from_numpy(q.astype(np.float32) * scale[:, None]))
    return model


def _linear(name: str, weight: torch.Tensor, bias: torch.Tensor | None) -> Linear:
    def array(t):
        return t.detach().cpu().float().numpy().copy()

    return Linear(name, array(weight), None if bias is None else array(bias))


def _norm(norm: dict | None, side: str) -> tuple[np.ndarray, np.ndarray] | None:
    if not norm or f"{side}_mean" not in norm:
        return None
    return tuple(np.asarray(norm[f"{side}_{key}"], dtype=np.float32) for key in ("mean", "std"))
