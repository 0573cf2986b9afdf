"""PyTorch precision variants of a checkpoint's model: dynamic int8 (CPU) and fp16 (CUDA).

``dynamic_int8`` calls torch's plain ``quantize_dynamic`` on purpose, outside
``edgernn.quantize``: it is the "PyTorch int8 of the teacher" peer, what a user gets from
PyTorch alone. The int8 model ``edgernn compress`` ships is measured from its bundle.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import Tensor, nn

QUANTIZED_TYPES = {nn.LSTM, nn.GRU, nn.Linear}  # what torch's dynamic int8 kernels cover


def dynamic_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with LSTM/GRU/Linear layers in dynamic int8 (CPU inference only).

    Example::

        int8_model = dynamic_int8(load_checkpoint("teacher.pt").build())
    """
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        # torch.ao announces its move to torchao on every call.
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(model).cpu().eval(), QUANTIZED_TYPES, torch.qint8)


class HalfPrecision(nn.Module):
    """An fp16 copy of a model that takes the usual fp32 features and int64 ids and lengths.

    Example::

        logits = HalfPrecision(model).cuda()(features, lengths)   # fp16 logits
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = copy.deepcopy(model).half().eval()

    def forward(self, *args: Tensor) -> Tensor:
        return self.model(*(a.half() if a.is_floating_point() else a for a in args))

    def __getattr__(self, name: str):
        # evaluate() calls model-specific methods (seq2seq ``greedy``); forward them, in fp16.
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = self.__dict__.get("_modules", {}).get("model")  # absent while unpickling
            if inner is None:
                raise
            return getattr(inner, name)


def variant(model: nn.Module, precision: str) -> nn.Module:
    """``model`` as measured at ``precision``: fp32 as is, fp16 or dynamic int8 copies."""
    if precision == "int8":
        return dynamic_int8(model)
    if precision == "fp16":
        return HalfPrecision(model)
    return model
