"""Plan and apply dynamic int8 quantization; ``_backend_quantize`` is the one backend call."""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from edgernn.data import TaskData
from edgernn.errors import EdgeRNNError
from edgernn.evaluate import evaluate
from edgernn.metrics import drop_unit, metric_drop
from edgernn.models.size import serialized_size
from edgernn.quantize.config import QuantizeConfig, QuantPlan
from edgernn.tasks import primary_metric

_KIND_OF: dict[type[nn.Module], str] = {
    nn.LSTM: "rnn",
    nn.GRU: "rnn",
    nn.Linear: "linear",
    nn.Embedding: "embedding",
}


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
                unit = drop_unit(metric)
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
