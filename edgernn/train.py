"""Fit and evaluate models: AdamW, one-cycle schedule, clipping, early stopping, seeded."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from edgernn.checkpoint import Checkpoint
from edgernn.config import ModelSpec, TrainConfig, attention_for
from edgernn.data import Batch, TaskData, encode, fit_meta, iterate_batches, load_raw
from edgernn.data.meta import DataMeta
from edgernn.evaluate import evaluate
from edgernn.models import build_model
from edgernn.resume import Progress, load_state, save_state
from edgernn.tasks import TASKS, is_better, primary_metric


def build_spec(task: str, meta: DataMeta, **choices) -> ModelSpec:
    """A ``ModelSpec`` from the user's choices plus the sizes the data dictates."""
    sizes = {"vocab_size": len(meta.vocab or []), "input_size": meta.input_size}
    if task == "seq2seq":
        sizes["num_outputs"] = len(meta.tgt_vocab)
        # The CLI passes attention=None when --attention is not given.
        choices["attention"] = attention_for(task, choices.get("attention"))
    elif task == "lm":
        sizes["num_outputs"] = len(meta.vocab)
    elif task == "regress":
        sizes["num_outputs"] = len(meta.norm["y_mean"])
    else:
        sizes["num_outputs"] = len(meta.labels)
    return ModelSpec(task=task, **sizes, **choices)


def _check_choices(task: str, choices: dict) -> None:
    # Fail on impossible settings before any data is read; sizes are placeholders here.
    placeholder = dict(choices)
    placeholder["attention"] = attention_for(task, choices.get("attention"))
    ModelSpec(task=task, vocab_size=1, num_outputs=1, **placeholder)


Objective = Callable[[nn.Module, Batch], torch.Tensor]


def fit(
    model: nn.Module,
    data: TaskData,
    config: TrainConfig,
    device: str = "cpu",
    objective: Objective | None = None,
    resume: Path | None = None,
) -> nn.Module:
    """Train a copy of ``model`` and return the copy with the best validation score.

    Args:
        model: any zoo model; it is not modified.
        data: encoded splits; train is fitted, valid decides early stopping.
        config: optimisation settings.
        device: ``cpu`` or ``cuda``.
        objective: ``objective(model, batch) -> loss`` replacing the task's own loss (e.g.
            distillation). If it is an ``nn.Module``, it is moved to ``device`` and its
            parameters that require grad (e.g. a learned projection) are trained too.
        resume: a training-state file (``edgernn.resume``): continued from when it exists,
            written after every epoch, removed at the end. None: none is kept.

    Returns:
        The trained model (best validation epoch), in eval mode.
    """
    torch.manual_seed(config.seed)
    model = copy.deepcopy(model).to(device).train()
    task, (metric, higher) = TASKS[data.meta.task], primary_metric(data.meta.task)
    loss_fn, parameters = _objective(model, task.loss, objective, device)
    batches_per_epoch = math.ceil(len(data.splits["train"]) / config.batch_size)
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.epochs * batches_per_epoch
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total_steps, pct_start=_warmup(total_steps)
    )
    order = torch.Generator().manual_seed(config.seed)
    parts = {"model": model, "optimizer": optimizer, "schedule": schedule}
    if isinstance(objective, nn.Module):
        parts["objective"] = objective
    fingerprint = _fingerprint(model, data, config)
    progress = Progress()
    if resume is not None and resume.exists():
        progress = load_state(resume, fingerprint, parts, order)
    for epoch in range(progress.epoch + 1, config.epochs + 1):
        if progress.stale >= config.patience:
            break
        batches = iterate_batches(data.splits["train"], data.meta.task, config.batch_size, order)
        bar = tqdm(
            batches, total=batches_per_epoch, desc=f"epoch {epoch}", disable=not config.progress
        )
        for batch in bar:
            loss = loss_fn(model, batch.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, config.clip_norm)
            optimizer.step()
            schedule.step()
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        score = evaluate(model, data.splits["valid"], data.meta, device)[metric]
        best = progress.best_score
        if best is None or is_better(score, best, higher):
            progress.best_score, progress.stale = score, 0
            progress.best_state = copy.deepcopy(model.state_dict())
        else:
            progress.stale += 1
        progress.epoch = epoch
        if config.progress:
            tqdm.write(
                f"epoch {epoch}: valid {metric} {score:.4f} (best {progress.best_score:.4f})"
            )
        if resume is not None:
            save_state(resume, fingerprint, progress, parts, order)
    model.load_state_dict(progress.best_state)
    if resume is not None:
        resume.unlink(missing_ok=True)
    return model.eval()


def _fingerprint(model: nn.Module, data: TaskData, config: TrainConfig) -> dict:
    # What must not change between a run and its resumption (the progress bar may).
    settings = {k: v for k, v in asdict(config).items() if k != "progress"}
    spec = model.spec.to_dict() if hasattr(model, "spec") else type(model).__name__
    sizes = {split: len(examples) for split, examples in data.splits.items()}
    return {"settings": settings, "model": spec, "data": [data.meta.source, sizes]}


def _warmup(total_steps: int) -> float:
    # OneCycleLR divides by pct_start * total_steps - 1: a warm-up of exactly one step (10
    # steps in all) would raise ZeroDivisionError, so that one case warms up for two.
    return 0.2 if total_steps == 10 else 0.1


def _objective(
    model: nn.Module, default: Objective, objective: Objective | None, device: str
) -> tuple[Objective, list[nn.Parameter]]:
    parameters = list(model.parameters())
    if isinstance(objective, nn.Module):
        objective.to(device)
        parameters += [p for p in objective.parameters() if p.requires_grad]
    return objective or default, parameters


def train(
    data: str,
    task: str,
    config: TrainConfig | None = None,
    tokens: str | None = None,
    device: str = "cpu",
    text: dict | None = None,
    resume: Path | None = None,
    **choices,
) -> Checkpoint:
    """Train a teacher from a DATA argument and return its checkpoint (not yet saved).

    Args:
        data: ``builtin:NAME``, a file, or a split directory (see DESIGN.md).
        task: classify, tag, lm, regress or seq2seq.
        config: optimisation settings; defaults suit the builtin datasets.
        tokens: ``char`` or ``word`` for text; default per task or dataset.
        text: tokenization choices ``unicode`` (``nfc`` or ``none``), ``lowercase`` and
            ``split_punctuation`` (bools); a key missing or None takes the task's default
            (``edgernn.data.prepare.text_rules``).
        device: ``cpu`` or ``cuda``.
        resume: the training-state file ``fit`` keeps (``edgernn.resume.state_path``);
            an existing one is continued. None: none is kept.
        **choices: ``ModelSpec`` fields such as cell, hidden, layers, bidirectional, embed,
            attention, pooling, dropout, max_len.

    Returns:
        A ``Checkpoint`` with the best weights and valid/test metrics.

    Example::

        ckpt = train("builtin:sentiment", "classify", cell="gru", hidden=64)
        save_checkpoint(ckpt, "teacher.pt")
    """
    config = config or TrainConfig()
    choices = {name: value for name, value in choices.items() if value is not None}
    _check_choices(task, choices)
    raw = load_raw(data, task)
    meta = fit_meta(raw, tokens, text)
    spec = build_spec(task, meta, **choices)
    encoded = encode(raw, meta, spec.max_len)
    torch.manual_seed(config.seed)
    model = fit(build_model(spec), encoded, config, device, resume=resume)
    scores = {
        split: evaluate(model, encoded.splits[split], meta, device) for split in ("valid", "test")
    }
    state = {name: tensor.cpu() for name, tensor in model.state_dict().items()}
    return Checkpoint(spec, meta, state, scores, asdict(config))
