"""Dynamic int8 quantization in PyTorch, the one package that touches a quantization backend.

Weights become int8 once; activations are quantized on the fly, per batch, so no calibration
data is needed. ``dynamic._backend_quantize`` is the only call into the backend (today the
deprecated ``torch.ao.quantization.quantize_dynamic``; torchao's ``quantize_`` is its
successor), so the backend can be swapped in one place. A layer is only quantized where it
pays: when the serialized model gets smaller (packed int8 weights carry a fixed overhead, so a
tiny layer, such as a 64 x 3 output layer, or narrow embedding rows, can grow). What torch
supports:

- ``nn.LSTM``, ``nn.GRU`` and ``nn.Linear``: int8 weights, dynamic int8 activations (CPU only).
- ``nn.Embedding``: weight-only 8-bit rows with a float scale and offset per row.
- ``nn.RNN`` (vanilla tanh RNN): torch has no dynamically quantized multi-layer RNN (only
  ``RNNCell``), so vanilla RNN layers stay fp32 and the plan says so.

Quantized modules cannot be stored in a ``weights_only`` checkpoint (their packed weights are
pickled objects), so a compressed checkpoint stores the fp32 model plus a ``QuantPlan``, and
``apply_plan`` re-quantizes on load: deterministic, and the file stays free of pickled code.

``config`` (torch-free) holds ``QuantizeConfig`` and ``QuantPlan``, ``dynamic`` the rest.
Exports resolve lazily, so reading a config's defaults does not import torch.
"""

from __future__ import annotations

from edgernn.lazy import lazy_exports

_EXPORTS = {
    "KINDS": "edgernn.quantize.config",
    "QuantPlan": "edgernn.quantize.config",
    "QuantizeConfig": "edgernn.quantize.config",
    "apply_plan": "edgernn.quantize.dynamic",
    "candidate_layers": "edgernn.quantize.dynamic",
    "load_int8": "edgernn.quantize.dynamic",
    "plan_quantization": "edgernn.quantize.dynamic",
    "quantize": "edgernn.quantize.dynamic",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
