"""One trial: compress the teacher with the trial's choices, measure it, judge it by the budget.

What every trial of a process shares (the teacher, its encoded data, its valid score) is
loaded once per process (``TrialContext.load``). Per-epoch reports to the pruner come from
the distillation's own validation pass (``report_distill_epochs``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch

import edgernn.train
from edgernn.checkpoint import Checkpoint, checkpoint_data, load_checkpoint, save_checkpoint
from edgernn.compress.config import CompressOptions
from edgernn.compress.precision import ships_int8
from edgernn.compress.stages import Compressed, compress
from edgernn.data import TaskData
from edgernn.distill import student_spec, student_vocab
from edgernn.errors import EdgeRNNError
from edgernn.evaluate import evaluate
from edgernn.metrics import drop_unit, metric_drop
from edgernn.quantize import load_int8
from edgernn.search.objective import TABLES, latency_ms, macs, median_length
from edgernn.search.space import suggest_choices, trial_options
from edgernn.tasks import primary_metric

FP32_BYTES, INT8_BYTES = 4, 1
CONSTRAINT_PER_TRIAL = hasattr(optuna.trial.Trial, "set_constraint")  # Optuna 5 and later


@dataclass(frozen=True)
class TrialSettings:
    """What every worker needs to run trials: picklable, so a spawned process gets it."""

    teacher_file: str
    data: str | None
    options: CompressOptions  # the user's flags; each trial overrides the searched ones
    budget: float  # metric_drop units
    pinned: dict
    device: str = "cpu"
    objective: str = "size"  # edgernn.search.objective.OBJECTIVES
    trials_dir: str | None = None  # where each measured trial's student.pt is kept; None: not


@dataclass(frozen=True)
class TrialContext:
    """The teacher and data of a search, loaded once per process."""

    teacher: Checkpoint
    data: TaskData
    metric: str
    teacher_valid: float
    steps: int  # the valid split's median length: what macs and latency are measured at

    @staticmethod
    @functools.cache
    def load(teacher_file: str, data: str | None) -> TrialContext:
        teacher = load_checkpoint(teacher_file)
        encoded, note = checkpoint_data(teacher, data)
        if encoded is None:
            raise EdgeRNNError(f"--search needs data to measure trials ({note}); pass --data")
        metric = primary_metric(teacher.spec.task)[0]
        valid = evaluate(teacher.build(), encoded.splits["valid"], encoded.meta)[metric]
        steps = median_length(encoded.splits["valid"])
        return TrialContext(teacher, encoded, metric, valid, steps)

    def valid_drop(self, score: float) -> float:
        return metric_drop(self.teacher_valid, score, self.metric)


@dataclass(frozen=True)
class Measured:
    """A compressed model as the search judges it."""

    result: Compressed
    valid_metric: float
    valid_drop: float
    size_bytes: int  # estimated artifact bytes (estimated_size)
    precision: str  # int8 | fp32: what the bundle of this result ships
    macs: int  # for one valid input of median length (edgernn.search.objective)
    embed_bits: int  # of the shipped tables: 8, 4, or 32 for fp32

    def objective(self, name: str, context: TrialContext, data: str | None) -> float:
        """The value ``name`` (size, macs, latency) the search minimises."""
        if name == "size":
            return float(self.size_bytes)
        if name == "macs":
            return float(self.macs)
        int8, bits = self.precision == "int8", min(self.embed_bits, 8)
        return latency_ms(self.result.checkpoint, data, int8, bits, context.steps)


def run_trial(trial: optuna.Trial, settings: TrialSettings) -> float:
    """Optuna's objective: the trial's ``settings.objective``, its valid drop a constraint.

    Every measurement goes into the trial's user attributes (``summary`` reads them); the
    constraint (drop - budget, feasible when <= 0) steers TPE towards trials within budget.
    """
    context = TrialContext.load(settings.teacher_file, settings.data)
    # Which process ran it: workers sharing one storage show up in the report.
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    choices = suggest_choices(trial, context.teacher.spec, settings.pinned)
    trial.set_user_attr("choices", choices)  # rounded, pinned ones included
    options = trial_options(settings.options, choices)
    try:
        config = options.config().student
        vocab = student_vocab(context.data, config)
        student = student_spec(context.teacher.spec, config, len(vocab) if vocab else None)
        with report_distill_epochs(trial, context, student, settings.budget):
            measured = measure(context, options, settings.data, settings.device)
    except EdgeRNNError as error:  # an impossible student (bigger than the teacher, ...)
        trial.set_user_attr("error", str(error))
        raise
    _keep_student(trial, measured.result, settings.trials_dir)
    trial.set_user_attr("valid_metric", measured.valid_metric)
    trial.set_user_attr("valid_drop", measured.valid_drop)
    trial.set_user_attr("precision", measured.precision)
    trial.set_user_attr("size_bytes", measured.size_bytes)
    trial.set_user_attr("macs", measured.macs)
    excess = measured.valid_drop - settings.budget
    excess = excess if math.isfinite(excess) else math.inf  # a NaN score is never feasible
    trial.set_user_attr("constraint", excess)  # what summary reads, whatever the Optuna
    if CONSTRAINT_PER_TRIAL:
        trial.set_constraint("budget", excess)
    value = measured.objective(settings.objective, context, settings.data)
    if settings.objective == "latency":  # size and MACs are recorded above
        trial.set_user_attr("latency", value)
    return value


def _keep_student(trial: optuna.Trial, result: Compressed, trials_dir: str | None) -> None:
    """Save the trial's compressed student, so a chosen trial is not trained again.

    One folder per study: the trial numbers of two studies in one storage overlap.
    """
    if trials_dir is None:
        return
    path = Path(trials_dir) / trial.study.study_name / f"trial-{trial.number}.pt"
    try:
        saved = save_checkpoint(result.checkpoint, path)
    except EdgeRNNError as error:  # a full disk costs the chosen trial a rebuild, not the trial
        trial.set_user_attr("checkpoint_error", str(error))
        return
    trial.set_user_attr("checkpoint", str(saved.resolve()))


def measure(context: TrialContext, options: CompressOptions, data, device) -> Measured:
    """Compress with ``options`` and score the model the bundle would ship on valid."""
    config = options.config(progress=False)
    return score(context, compress(context.teacher, config, data, device), config)


def score(context: TrialContext, result: Compressed, config) -> Measured:
    """``result`` as the search judges it: what its bundle ships, scored on valid.

    ``config``: the ``CompressConfig`` it was compressed with.
    """
    # The int8 model when its plan was kept, else the final fp32 one: what ships.
    shipped = load_int8(result.checkpoint)
    valid = context.data
    if result.checkpoint.meta.vocab != valid.meta.vocab:  # the student's pruned vocabulary
        valid = student_vocab(valid, config.student).encode(valid)
    score = evaluate(shipped, valid.splits["valid"], valid.meta)[context.metric]
    int8 = ships_int8(result.checkpoint.compression)
    bits = config.embed_bits if int8 else 32
    return Measured(
        result=result,
        valid_metric=score,
        valid_drop=context.valid_drop(score),
        size_bytes=estimated_size(result.checkpoint.state_dict, int8, bits)
        + len(json.dumps(result.checkpoint.meta.vocab or [])),  # the manifest's vocabulary
        precision="int8" if int8 else "fp32",
        macs=macs(result.checkpoint.state_dict, result.checkpoint.spec.task, context.steps),
        embed_bits=bits,
    )


def estimated_size(state: dict[str, torch.Tensor], int8: bool, embed_bits: int = 8) -> int:
    """Bytes of the shipped graph's weights, from parameter counts and precision.

    int8 graphs store every weight matrix (embeddings, recurrent and output weights) at one
    byte, embedding tables at ``embed_bits``; biases, norms and scales stay fp32. Graph
    structure and per-tensor scales are left out: an estimate to rank trials by; the chosen
    one's bundle is measured exactly.
    """
    total = 0.0
    for name, tensor in state.items():
        wide = int8 and tensor.dim() >= 2
        table = wide and name.endswith(TABLES)
        per_weight = embed_bits / 8 if table else INT8_BYTES if wide else FP32_BYTES
        total += tensor.numel() * per_weight
    return round(total)


@contextlib.contextmanager
def report_distill_epochs(trial, context: TrialContext, student, budget: float) -> Iterator[None]:
    """Report the student's valid drop after each distillation epoch; prune when told to.

    ``edgernn.train.fit`` scores the valid split after every epoch through the module name
    ``edgernn.train.evaluate`` and has no epoch callback, so this wraps that name for the
    block (one trial at a time per process: workers are processes, not threads). Only the
    distilled student's epochs are reported (pruning's fine-tuning fits a narrower model);
    the value is the drop vs the teacher, so lower is better, like the study's objective.
    """
    original = edgernn.train.evaluate
    epoch = 0

    def evaluate_and_report(model, examples, meta, *args, **kwargs):
        nonlocal epoch
        scores = original(model, examples, meta, *args, **kwargs)
        if getattr(model, "spec", None) == student:
            epoch += 1
            drop = context.valid_drop(scores[context.metric])
            trial.report(drop if math.isfinite(drop) else math.inf, epoch)
            if trial.should_prune():
                unit = drop_unit(context.metric)
                trial.set_user_attr("pruned_at", f"epoch {epoch}: {drop:.3g} {unit} worse")
                raise optuna.TrialPruned(f"epoch {epoch}: valid drop {drop:.3g} {unit}")
        return scores

    edgernn.train.evaluate = evaluate_and_report
    try:
        yield
    finally:
        edgernn.train.evaluate = original
