"""How big a model is: serialized bytes, parameters, non-zero parameters, bytes by part.

One definition for every report row: compress stages, a user's own module and bench.
"""

from __future__ import annotations

import io

import torch
from torch import nn
from torch.ao.nn.quantized import Embedding as QuantizedEmbedding
from torch.ao.nn.quantized.dynamic.modules.rnn import RNNBase as QuantizedRNNBase
from torch.ao.nn.quantized.dynamic.modules.rnn import RNNCellBase as QuantizedRNNCellBase

from edgernn.report.rows import PARTS


def serialized_size(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: what a device would store and load.

    Example::

        serialized_size(nn.Linear(4, 2))   # a little over 4 * (8 + 2) bytes plus the zip frame
    """
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """``(parameters, non-zero parameters)`` of ``model``, over ``model.parameters()``.

    Quantized modules hide their packed weights from ``parameters()``: count the fp32 model
    they were made from instead.

    Example::

        params, nonzero = parameter_counts(model)   # nonzero < params after unstructured pruning
    """
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    return total, sum(int(torch.count_nonzero(p)) for p in params)


# The quantized EmbeddingBag subclasses the quantized Embedding.
_EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag, QuantizedEmbedding)
_RECURRENT = (nn.RNNBase, nn.RNNCellBase, QuantizedRNNBase, QuantizedRNNCellBase)
_PER_CHANNEL = (
    torch.per_channel_affine,
    torch.per_channel_symmetric,
    torch.per_channel_affine_float_qparams,
)


def size_by_part(model: nn.Module) -> dict[str, int]:
    """Bytes of ``model.state_dict()`` split into ``embedding``, ``recurrent`` and ``head``.

    A tensor belongs to the module that owns its key: inside an embedding (``nn.Embedding``,
    quantized or not, or any module whose path names ``embedding``, such as the low-rank
    ``embedding.proj``) it is the embedding, inside a recurrent layer it is recurrent, and
    everything else (output layers, attention, bridges) is the head. Quantized modules count
    their packed int8 weights as stored; a tensor tied under two keys counts once.

    Example::

        size_by_part(model)   # {"embedding": 6400, "recurrent": 52224, "head": 516}
    """
    modules = dict(model.named_modules())
    parts, seen = dict.fromkeys(PARTS, 0), {}
    # Embedding keys first, so a table tied to the output layer counts as the embedding.
    keyed = sorted(model.state_dict().items(), key=lambda kv: _part(kv[0], modules) != PARTS[0])
    for key, value in keyed:
        parts[_part(key, modules)] += _stored_bytes(value, seen)
    return parts


def _part(key: str, modules: dict[str, nn.Module]) -> str:
    # Every module on the key's path: a Linear inside an embedding module is the embedding's.
    names = key.split(".")
    prefixes = (".".join(names[:i]) for i in range(len(names)))
    path = [modules[prefix] for prefix in prefixes if prefix in modules]
    if "embedding" in key.lower() or any(isinstance(m, _EMBEDDINGS) for m in path):
        return "embedding"
    return "recurrent" if any(isinstance(m, _RECURRENT) for m in path) else "head"


def _stored_bytes(value, seen: dict) -> int:
    """Bytes of one state-dict value: a tensor, or the packed params quantized modules keep."""
    if isinstance(value, torch.Tensor):
        return _tensor_bytes(value, seen)
    if isinstance(value, (tuple, list)):
        return sum(_stored_bytes(item, seen) for item in value)
    if isinstance(value, torch.ScriptObject):  # packed LSTM/GRU cells: their saved state
        return _stored_bytes(value.__getstate__(), seen)
    return 0  # dtypes, names and flags the packed params carry


def _tensor_bytes(tensor: torch.Tensor, seen: dict) -> int:
    if not tensor.is_quantized:
        # One storage under two keys (tied weights, a bias both LSTM packs hold) is saved
        # once. ``seen`` keeps each tensor alive, so no later unpacked tensor reuses its address.
        key = (tensor.data_ptr(), tensor.dtype, tuple(tensor.shape))
        if key in seen:
            return 0
        seen[key] = tensor
        return tensor.numel() * tensor.element_size()
    data = tensor.numel() * tensor.element_size()
    if tensor.qscheme() not in _PER_CHANNEL:
        return data
    # A scale and a zero point per row are stored beside the int8 values.
    scales, zeros = tensor.q_per_channel_scales(), tensor.q_per_channel_zero_points()
    return data + sum(t.numel() * t.element_size() for t in (scales, zeros))
