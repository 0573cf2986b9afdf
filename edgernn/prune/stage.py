"""The pruning stage: check everything first, then prune step by step with fine-tuning."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import partial

from torch import nn

from edgernn.config import ModelSpec, TrainConfig
from edgernn.data import TaskData
from edgernn.errors import EdgeRNNError
from edgernn.prune.config import PruneConfig, step_targets
from edgernn.prune.importance import unit_importance
from edgernn.prune.shrink import shrink_hidden_units
from edgernn.prune.units import select_units
from edgernn.prune.unstructured import make_copyable, prune_unstructured, weight_targets
from edgernn.train import fit


def prune(model: nn.Module, config: PruneConfig, data: TaskData | None = None) -> nn.Module:
    """Prune a copy of ``model``: remove hidden units (structured) or zero weights (unstructured).

    With ``config.schedule == "agp"`` the amount grows over ``config.steps`` steps along
    Zhu & Gupta's cubic ramp, with ``config.epochs`` epochs of fine-tuning (``edgernn.train.
    fit``, masks in force) after each. Without ``data`` (or with ``epochs=0``) nothing is
    retrained and the ramp collapses to one step: unstructured magnitude ranks cannot change
    between steps, so every step would prune exactly what one-shot prunes, and structured
    steps would only re-rank units by norms that nothing has updated.

    Args:
        model: an edgernn zoo model (unstructured also takes any module with LSTM/GRU/RNN
            or Linear layers); not modified.
        config: amount, mode, schedule, fine-tuning and importance settings.
        data: encoded splits of the model's task, for fine-tuning and activation importance.

    Returns:
        A new model in eval mode. Structured: ``build_model`` with a smaller
        ``spec.hidden``. Unstructured: the same parameter names and shapes, zeros folded in.

    Raises:
        EdgeRNNError: an impossible request (e.g. removing every unit), found before any work.

    Example::

        small = prune(teacher, PruneConfig(amount=0.5, mode="structured"), data)
        sparse = prune(teacher, PruneConfig(amount=0.8, mode="unstructured", steps=5), data)
    """
    check_prunable(model, config, data)
    tune = partial(finetune, data=data, config=config) if _tunes(config, data) else None
    if config.mode == "unstructured":
        sparsities = step_targets(config, gradual=tune is not None)
        return prune_unstructured(model, config, sparsities, tune).eval()
    return _prune_structured(model, config, data, tune).eval()


def _tunes(config: PruneConfig, data: TaskData | None) -> bool:
    return data is not None and config.epochs > 0


def check_prunable(model: nn.Module, config: PruneConfig, data: TaskData | None) -> None:
    """Raise ``EdgeRNNError`` for a request that cannot work, before any pruning starts."""
    spec = getattr(model, "spec", None)
    if data is not None and isinstance(spec, ModelSpec) and data.meta.task != spec.task:
        raise EdgeRNNError(f"data is for task {data.meta.task}, the model for {spec.task}")
    if config.mode == "unstructured":
        if not weight_targets(model, config.targets):
            raise EdgeRNNError(f"the model has no {'/'.join(config.targets)} weights to prune")
        return
    if not isinstance(spec, ModelSpec):
        raise EdgeRNNError(
            "structured pruning needs an edgernn model (built from a ModelSpec); use "
            "unstructured pruning for other modules"
        )
    if units_kept(spec.hidden, config.amount) < 1:
        raise EdgeRNNError(
            f"removing {config.amount:.0%} of {spec.hidden} hidden units leaves none; use an "
            f"amount below {(spec.hidden - 0.5) / spec.hidden:.3f}"
        )
    if config.importance == "activation" and data is None:
        raise EdgeRNNError("activation importance needs data to run the model on")


def units_kept(hidden: int, amount: float) -> int:
    """Hidden units left after removing ``amount`` of ``hidden`` (rounded to nearest)."""
    return hidden - round(amount * hidden)


def finetune(model: nn.Module, data: TaskData, config: PruneConfig) -> nn.Module:
    """A fine-tuned copy: ``config.epochs`` epochs of ``fit`` at peak rate ``config.lr``.

    Pruning masks (``torch.nn.utils.prune``) stay in force: the forward pass reads
    weight_orig * mask, so pruned weights get no gradient and stay exactly zero.

    Args:
        model: a model, possibly under pruning masks; not modified.
        data: encoded splits: train is fitted, valid picks the best epoch.
        config: ``epochs`` (at least 1) and ``lr``.

    Returns:
        The fine-tuned copy (best validation epoch), masks still attached, in eval mode.

    Example::

        tuned = finetune(model, data, PruneConfig(epochs=2))
    """
    make_copyable(model)  # only swaps a cache the mask hook recomputes before each forward
    # patience = epochs: a short fine-tune runs every epoch; fit still keeps the best one.
    train_config = TrainConfig(
        epochs=config.epochs, lr=config.lr, patience=config.epochs, progress=False
    )
    return fit(model, data, train_config)


def _prune_structured(
    model: nn.Module,
    config: PruneConfig,
    data: TaskData | None,
    tune: Callable[[nn.Module], nn.Module] | None,
) -> nn.Module:
    spec, current = model.spec, copy.deepcopy(model)
    for amount in step_targets(config, gradual=tune is not None):
        keep = units_kept(spec.hidden, amount)
        if keep >= current.spec.hidden:
            continue  # the ramp rounded to no change at this step
        importance = unit_importance(current, config.importance, data)
        current = shrink_hidden_units(current, select_units(current.spec, importance, keep))
        if tune is not None:
            current = tune(current)
    return current
