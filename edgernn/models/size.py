"""How big a model is: serialized bytes, parameters and non-zero parameters.

One definition for every report row: compress stages, a user's own module and bench.
"""

from __future__ import annotations

import io

import torch
from torch import nn


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
