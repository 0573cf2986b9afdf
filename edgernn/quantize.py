"""Dynamic int8 quantization in PyTorch, the one module that touches a quantization backend.

Weights become int8 once; activations are quantized on the fly, per batch, so no calibration
data is needed. ``_backend_quantize`` is the only call into the backend (today the deprecated
``torch.ao.quantization.quantize_dynamic``; torchao's ``quantize_`` is its successor), so the
backend can be swapped in one place. A layer is only quantized where it pays: when the
serialized model gets smaller (packed int8 weights carry a fixed overhead, so a tiny layer,
such as a 64 x 3 output layer, or narrow embedding rows, can grow). What torch supports:

- ``nn.LSTM``, ``nn.GRU`` and ``nn.Linear``: int8 weights, dynamic int8 activations (CPU only).
- ``nn.Embedding``: weight-only 8-bit rows with a float scale and offset per row.
- ``nn.RNN`` (vanilla tanh RNN): torch has no dynamically quantized multi-layer RNN (only
  ``RNNCell``), so vanilla RNN layers stay fp32 and the plan says so.

Quantized modules cannot be stored in a ``weights_only`` checkpoint (their packed weights are
pickled objects), so a compressed checkpoint stores the fp32 model plus a ``QuantPlan``, and
``apply_plan`` re-quantizes on load: deterministic, and the file stays free of pickled code.
"""

from __future__ import annotations

import copy
import io
import warnings
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from edgernn.data import TaskData
from edgernn.errors import EdgeRNNError
from edgernn.evaluate import evaluate
from edgernn.metrics import HIGHER_IS_BETTER
from edgernn.tasks import primary_metric

KINDS = ("rnn", "linear", "embedding")
_KIND_OF: dict[type[nn.Module], str] = {
    nn.LSTM: "rnn",
    nn.GRU: "rnn",
    nn.Linear: "linear",
    nn.Embedding: "embedding",
}


@dataclass(frozen=True)
class QuantizeConfig:
    """Which layers become int8, and how much metric one layer may cost."""

    kinds: tuple[str, ...] = KINDS  # layer types to quantize
    # Largest metric loss one layer may cause when quantized alone (points for accuracy-like
    # metrics, percent relative for perplexity/MSE), measured on the valid split; layers above
    # it stay fp32. None skips the measurement and quantizes every supported layer.
    threshold: float | None = 0.5

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown:
            raise EdgeRNNError(f"unknown layer kinds {unknown}; choose from {', '.join(KINDS)}")
        if self.threshold is not None and self.threshold < 0:
            raise EdgeRNNError(f"sensitivity threshold must be >= 0, got {self.threshold}")


@dataclass(frozen=True)
class QuantPlan:
    """Which layers run int8; stored in compressed checkpoints and re-applied on load."""

    int8: tuple[str, ...]  # module names, as in ``model.named_modules()``
    fp32: dict[str, str] = field(default_factory=dict)  # module name -> why it stays float
    sensitivity: dict[str, float] = field(default_factory=dict)  # metric loss, layer alone
    backend: str = "torch.dynamic.int8"

    def to_dict(self) -> dict:
        return asdict(self) | {"int8": list(self.int8)}

    @classmethod
    def from_dict(cls, values: dict) -> QuantPlan:
        return cls(**values | {"int8": tuple(values["int8"])})


def metric_drop(reference: float, value: float, metric: str) -> float:
    """How much worse ``value`` is than ``reference``: points, or percent relative for errors.

    Example::

        metric_drop(99.0, 98.5, "accuracy")      # 0.5 (points)
        metric_drop(2.00, 2.04, "perplexity")    # 2.0 (percent relative)
    """
    if HIGHER_IS_BETTER[metric]:
        return reference - value
    return 100.0 * (value - reference) / abs(reference)


def candidate_layers(model: nn.Module, config: QuantizeConfig) -> tuple[dict, dict]:
    """Split ``model``'s layers into those to quantize and those that stay fp32 (with why).

    Returns:
        ``(candidates, fp32)``: module name -> kind, and module name -> reason.
    """
    candidates, fp32 = {}, {}
    for name, module in model.named_modules():
        kind = _KIND_OF.get(type(module))
        if isinstance(module, nn.RNN):
            fp32[name] = "torch has no dynamic int8 vanilla RNN layer"
        elif kind is None:
            continue
        elif kind not in config.kinds:
            fp32[name] = f"{kind} layers not selected"
        else:
            candidates[name] = kind
    return candidates, fp32


def plan_quantization(
    model: nn.Module, config: QuantizeConfig | None = None, data: TaskData | None = None
) -> QuantPlan:
    """Decide which layers become int8, measuring each layer alone on the valid split.

    Args:
        model: an fp32 zoo model; it is not modified.
        config: layer kinds and the sensitivity threshold.
        data: encoded data; without it (or with ``threshold=None``) every supported layer
            is quantized and nothing is measured.

    Returns:
        The plan.

    Example::

        plan = plan_quantization(model, QuantizeConfig(threshold=0.5), data)
        int8_model = apply_plan(model, plan)
    """
    config = config or QuantizeConfig()
    candidates, fp32 = candidate_layers(model, config)
    measure = data is not None and config.threshold is not None
    metric = primary_metric(data.meta.task)[0] if measure else ""
    reference = _score(model, data) if measure else 0.0
    size = serialized_size(model)
    sensitivity, keep = {}, []
    for name, kind in candidates.items():
        alone = _backend_quantize(model, {name: kind})
        if serialized_size(alone) >= size:
            fp32[name] = "int8 does not pay: the serialized model would not shrink"
            continue
        if measure:
            drop = sensitivity[name] = metric_drop(reference, _score(alone, data), metric)
            if drop > config.threshold:
                unit = "points" if HIGHER_IS_BETTER[metric] else "% relative"
                fp32[name] = f"costs {drop:.3g} {unit} of {metric} alone (max {config.threshold})"
                continue
        keep.append(name)
    return QuantPlan(tuple(keep), fp32, sensitivity)


def _score(model: nn.Module, data: TaskData) -> float:
    metric = primary_metric(data.meta.task)[0]
    return evaluate(model, data.splits["valid"], data.meta)[metric]


def apply_plan(model: nn.Module, plan: QuantPlan) -> nn.Module:
    """A copy of ``model`` with the plan's layers quantized to int8 (CPU inference only).

    Raises:
        EdgeRNNError: the plan names a layer the model does not have.
    """
    modules = dict(model.named_modules())
    missing = [name for name in plan.int8 if name not in modules]
    if missing:
        raise EdgeRNNError(f"the quantization plan names layers the model lacks: {missing}")
    return _backend_quantize(model, {name: _KIND_OF[type(modules[name])] for name in plan.int8})


def quantize(
    model: nn.Module, config: QuantizeConfig | None = None, data: TaskData | None = None
) -> nn.Module:
    """Plan and apply dynamic int8 quantization in one call; ``model`` is not modified."""
    return apply_plan(model, plan_quantization(model, config, data))


def serialized_size(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: what a device would store and load."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def _backend_quantize(model: nn.Module, layers: dict[str, str]) -> nn.Module:
    # The single call into the quantization backend; see the module docstring.
    from torch.ao.quantization import default_dynamic_qconfig, float_qparams_weight_only_qconfig
    from torch.ao.quantization import quantize_dynamic as backend

    qconfigs = {
        name: float_qparams_weight_only_qconfig if kind == "embedding" else default_dynamic_qconfig
        for name, kind in layers.items()
    }
    with warnings.catch_warnings():
        # torch.ao announces its move to torchao on every call; this module is where it moves.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        quantized = backend(copy.deepcopy(model).cpu().eval(), qconfigs)
    for name, kind in layers.items():
        if kind == "embedding":
            _wrap(quantized, name)
    return quantized


class _ContiguousIds(nn.Module):
    """The int8 embedding kernel rejects strided ids (e.g. ``tgt_in[:, t]``); copy them."""

    def __init__(self, embedding: nn.Module):
        super().__init__()
        self.embedding = embedding

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids.contiguous())


def _wrap(model: nn.Module, name: str) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name)
    setattr(parent, child, _ContiguousIds(getattr(parent, child)))


def load_int8(checkpoint) -> nn.Module:
    """The checkpoint's model with its stored int8 plan applied; fp32 when it has no plan.

    Example::

        model = load_int8(load_checkpoint("out/student.pt"))   # CPU inference
    """
    model = checkpoint.build()
    plan = (checkpoint.compression or {}).get("quantization")
    return apply_plan(model, QuantPlan.from_dict(plan)) if plan else model
