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

from edgernn import distributed
from edgernn.checkpoint import Checkpoint
from edgernn.config import ModelSpec, TrainConfig, attention_for
from edgernn.data import Batch, TaskData, encode, fit_meta, load_raw, shards
from edgernn.data.batching import batch_indices, collate, example_lengths
from edgernn.data.meta import DataMeta
from edgernn.distributed import shard
from edgernn.errors import EdgeRNNError
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
    examples, rank, world = data.splits["train"], distributed.rank(), distributed.world_size()
    batches_per_epoch = _steps_per_epoch(len(examples), config.batch_size, world)
    _check_parallel(batches_per_epoch, config.batch_size, world)
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    total_steps = min(config.epochs * batches_per_epoch, config.max_steps or math.inf)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total_steps, pct_start=_warmup(total_steps)
    )
    order = torch.Generator().manual_seed(config.seed)
    parts = {"model": model, "optimizer": optimizer, "schedule": schedule}
    if isinstance(objective, nn.Module):
        parts["objective"] = objective
    # The process count decides the batches' shards and (by a dropped tail) their number.
    fingerprint = _fingerprint(model, data, config) | {"processes": world}
    progress = Progress()
    if resume is not None and resume.exists():
        progress = load_state(resume, fingerprint, parts, order)
    step_loss = _step_loss(model, loss_fn, device)  # ``model`` stays the bare module
    lengths = example_lengths(examples)
    shows = config.progress and distributed.is_main()
    for epoch in range(progress.epoch + 1, config.epochs + 1):
        if progress.stale >= config.patience or schedule.last_epoch >= total_steps:
            break
        batches = _global_batches(lengths, config.batch_size, order, world)
        bar = tqdm(batches, total=batches_per_epoch, desc=f"epoch {epoch}", disable=not shows)
        for indices in bar:
            if schedule.last_epoch >= total_steps:  # --max-steps ends this epoch early
                break
            batch = collate([examples[i] for i in shard(indices, rank, world)], data.meta.task)
            loss = step_loss(batch.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, config.clip_norm)
            optimizer.step()
            schedule.step()
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        score = _validate(model, data, metric, device)
        best = progress.best_score
        if best is None or is_better(score, best, higher):
            progress.best_score, progress.stale = score, 0
            progress.best_state = copy.deepcopy(model.state_dict())
        else:
            progress.stale += 1
        progress.epoch = epoch
        if shows:
            tqdm.write(
                f"epoch {epoch}: valid {metric} {score:.4f} (best {progress.best_score:.4f})"
            )
        if resume is not None and distributed.is_main():
            save_state(resume, fingerprint, progress, parts, order)
    model.load_state_dict(progress.best_state)
    if resume is not None and distributed.is_main():
        resume.unlink(missing_ok=True)
    return model.eval()


def _steps_per_epoch(examples: int, batch_size: int, world: int) -> int:
    # batch_indices leaves at most one short batch (examples % batch_size); under data
    # parallelism it is skipped when some rank would get no example of it (_global_batches).
    tail = examples % batch_size
    return math.ceil(examples / batch_size) - (1 if 0 < tail < world else 0)


def _global_batches(
    lengths: list[int], batch_size: int, order: torch.Generator, world: int
) -> list[list[int]]:
    """The epoch's global batches (the same on every rank: same generator, same call).

    A batch with fewer examples than ranks is dropped on all of them alike: a rank with
    nothing to compute could not take part in DDP's gradient averaging.
    """
    return [b for b in batch_indices(lengths, batch_size, order) if len(b) >= world]


def _check_parallel(batches_per_epoch: int, batch_size: int, world: int) -> None:
    # The same checks, with the same outcome, on every rank: all of them fail, none hangs.
    if world == 1:
        return
    if batch_size < world:
        raise EdgeRNNError(
            f"--batch-size {batch_size} is smaller than the {world} processes; every "
            "process needs at least one example of each batch"
        )
    if batches_per_epoch == 0:
        raise EdgeRNNError(f"too few training examples for {world} processes")


class _BatchLoss(nn.Module):
    """The model and its loss as one module, ``forward(batch) -> loss``: what DDP wraps, so
    the gradients of every trained parameter (the model's and a distillation objective's
    projection) are averaged across ranks and the loss may read the model's insides."""

    def __init__(self, model: nn.Module, loss_fn: Objective):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn  # registered when it is a module: its parameters train too

    def forward(self, batch) -> torch.Tensor:
        return self.loss_fn(self.model, batch)


def _step_loss(model: nn.Module, loss_fn: Objective, device: str):
    """``batch -> loss`` of one training step, data-parallel while a process group is up."""
    if not distributed.active():
        return lambda batch: loss_fn(model, batch)
    from torch.nn.parallel import DistributedDataParallel

    # One GPU per rank: the one ``distributed.session`` chose from LOCAL_RANK.
    devices = [torch.cuda.current_device()] if device == "cuda" else None
    return DistributedDataParallel(_BatchLoss(model, loss_fn), device_ids=devices)


def _validate(model: nn.Module, data: TaskData, metric: str, device: str) -> float:
    """The validation score; under DDP rank 0 computes it and every rank receives it, so
    all make the same best-epoch and early-stopping decisions and stop together."""
    if not distributed.is_main():
        return distributed.broadcast_float(None, device)
    score = evaluate(model, data.splits["valid"], data.meta, device)[metric]
    return distributed.broadcast_float(score, device)


def _fingerprint(model: nn.Module, data: TaskData, config: TrainConfig) -> dict:
    # What must not change between a run and its resumption (the progress bar may).
    settings = {k: v for k, v in asdict(config).items() if k != "progress"}
    if settings["max_steps"] is None:  # as states saved before the setting existed
        del settings["max_steps"]
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


def prepare(
    data: str, task: str, tokens: str | None = None, text: dict | None = None, **choices
) -> tuple[ModelSpec, TaskData]:
    """The model spec and encoded data ``train`` would use (its arguments' meanings).

    Every mistake in the data or the choices raises here, before any training: the
    ``--nproc`` launcher calls it first so that bad input fails once, in one line.
    """
    choices = {name: value for name, value in choices.items() if value is not None}
    _check_choices(task, choices)
    if shards.is_shards(data):  # encoded by ``edgernn prepare``: read from disk as needed
        encoded = shards.load_for_training(data, task, tokens, text)
        spec = build_spec(task, encoded.meta, **choices)
        shards.check_length(encoded, spec.max_len)
        return spec, encoded
    raw = load_raw(data, task)
    meta = fit_meta(raw, tokens, text)
    spec = build_spec(task, meta, **choices)
    return spec, encode(raw, meta, spec.max_len)


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
    spec, encoded = prepare(data, task, tokens, text, **choices)
    meta = encoded.meta
    torch.manual_seed(config.seed)
    model = fit(build_model(spec), encoded, config, device, resume=resume)
    # Under DDP only rank 0's checkpoint is written: the other ranks' copies need no scores.
    splits = ("valid", "test") if distributed.is_main() else ()
    scores = {split: evaluate(model, encoded.splits[split], meta, device) for split in splits}
    state = {name: tensor.cpu() for name, tensor in model.state_dict().items()}
    return Checkpoint(spec, meta, state, scores, asdict(config))
