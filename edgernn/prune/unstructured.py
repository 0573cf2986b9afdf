"""Unstructured magnitude pruning: zero the smallest weights of each tensor, keep shapes."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn
from torch.nn.utils import prune as torch_prune

from edgernn.prune.config import PruneConfig

# (module name, parameter name), e.g. ("encoder.rnn", "weight_hh_l0") or ("head", "weight")
Target = tuple[str, str]


def _kind(module: nn.Module, name: str) -> str | None:
    """Which PruneConfig target a parameter belongs to; None for biases and the rest."""
    if isinstance(module, nn.RNNBase) and name.startswith("weight_hh"):
        return "recurrent"
    if isinstance(module, nn.RNNBase) and name.startswith("weight_ih"):
        return "input"
    if isinstance(module, nn.Linear) and name == "weight":
        return "linear"
    if isinstance(module, nn.Embedding) and name == "weight":
        return "embedding"
    return None


def weight_targets(model: nn.Module, kinds: tuple[str, ...]) -> list[Target]:
    """Every weight of ``model`` whose kind is in ``kinds`` (recurrent, input, linear, embedding).

    Args:
        model: a model without pruning reparametrisation.
        kinds: weight kinds, as ``PruneConfig.targets``.

    Returns:
        ``(module name, parameter name)`` pairs in module order.
    """
    return [
        (module_name, name)
        for module_name, module in model.named_modules()
        for name, _ in module.named_parameters(recurse=False)
        if _kind(module, name) in kinds
    ]


def mask_magnitudes(model: nn.Module, targets: list[Target], sparsity: float) -> None:
    """In place: mask the ``round(sparsity * numel)`` smallest-magnitude weights of each target.

    Masks only grow: a pruned weight is exactly 0, so it ranks among the smallest again and
    stays pruned as the target rises. Uses ``torch.nn.utils.prune`` (weight = orig * mask),
    so gradients of pruned weights are zero and fine-tuning cannot revive them.
    """
    for module_name, name in targets:
        module = model.get_submodule(module_name)
        if torch_prune.is_pruned(module) and hasattr(module, f"{name}_mask"):
            torch_prune.remove(module, name)
        torch_prune.l1_unstructured(module, name, amount=sparsity)
    make_copyable(model)


def make_copyable(model: nn.Module) -> None:
    """Let ``copy.deepcopy`` (which ``fit`` uses) copy a model under pruning masks.

    The masked weight is cached as a non-leaf tensor that deepcopy refuses (pytorch#103001);
    replacing the cache by a detached copy is safe because the pruning hook recomputes it
    before every forward pass.
    """
    for module, name in _masked(model):
        setattr(module, name, getattr(module, name).detach())


def make_permanent(model: nn.Module) -> nn.Module:
    """In place: fold every mask into its weight; parameter names and shapes are unchanged."""
    for module, name in list(_masked(model)):
        torch_prune.remove(module, name)
    return model


def _masked(model: nn.Module) -> Iterator[tuple[nn.Module, str]]:
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, torch_prune.BasePruningMethod):
                yield module, hook._tensor_name


def _effective(model: nn.Module) -> Iterator[tuple[str, Tensor]]:
    """Every parameter as the forward pass sees it (masked weights under their own name)."""
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            base = name.removesuffix("_orig")
            tensor = getattr(module, base) if hasattr(module, f"{base}_mask") else param
            yield f"{module_name}.{base}" if module_name else base, tensor


def sparsity_report(model: nn.Module) -> dict[str, float]:
    """Fraction of exact zeros in every parameter, masked or not.

    Args:
        model: any module, possibly still under pruning masks.

    Returns:
        ``{parameter name: zero fraction}``, e.g. ``{"encoder.rnn.weight_hh_l0": 0.8, ...}``.

    Example::

        report = sparsity_report(prune(model, PruneConfig(0.8, mode="unstructured")))
    """
    return {name: float((t == 0).sum()) / t.numel() for name, t in _effective(model)}


def count_nonzero(model: nn.Module) -> int:
    """Number of non-zero parameter values (the size a sparse format would store).

    Example::

        ratio = count_nonzero(pruned) / sum(p.numel() for p in pruned.parameters())
    """
    return sum(int(torch.count_nonzero(t)) for _, t in _effective(model))


def prune_unstructured(
    model: nn.Module,
    config: PruneConfig,
    sparsities: list[float],
    finetune: Callable[[nn.Module], nn.Module] | None,
) -> nn.Module:
    """Magnitude-prune a copy of ``model`` step by step, fine-tuning after each step.

    Args:
        model: the model to prune; not modified.
        config: which weight kinds to prune (``config.targets``).
        sparsities: the per-tensor sparsity after each step (non-decreasing).
        finetune: trains a copy with the masks in force; None skips fine-tuning.

    Returns:
        A plain model (masks folded in) with the same parameter names and shapes.
    """
    pruned = copy.deepcopy(model)
    targets = weight_targets(pruned, config.targets)
    for sparsity in sparsities:
        mask_magnitudes(pruned, targets, sparsity)
        if finetune is not None:
            pruned = finetune(pruned)
    # Loading into a copy of the input keeps its parameter order (removing a mask re-adds
    # the weight last) along with every name and shape.
    result = copy.deepcopy(model)
    result.load_state_dict(make_permanent(pruned).state_dict())
    return result
