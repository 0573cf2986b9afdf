"""Distillation losses, and the ``fit`` objective that combines them for ``edgernn.distill``.

Hinton's soft targets for class and token distributions, regression towards (or bounded by)
the teacher's outputs, hidden-state matching through a learned projection, and function
matching (Beyer et al. 2022): the student also imitates the teacher on perturbed copies of the
inputs, which have no labels, so the teacher's outputs there are information that training from
scratch never sees.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgernn.config import ModelSpec
from edgernn.data import Batch
from edgernn.data.batching import IGNORE_INDEX
from edgernn.data.vocab import SPECIALS
from edgernn.distill.cache import TeacherCache
from edgernn.distill.config import DistillConfig
from edgernn.distill.vocab import StudentVocab
from edgernn.models.encoder import length_mask
from edgernn.tasks import TASKS


def soft_target_loss(
    student: Tensor, teacher: Tensor, targets: Tensor, temperature: float, alpha: float
) -> Tensor:
    """Hinton's loss: ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE``.

    The KL divergence is summed over classes and averaged over the positions whose target is
    not ``IGNORE_INDEX``, like the cross-entropy; ``T^2`` keeps the soft-target gradients at
    the scale of the hard-target ones when T changes.

    Args:
        student: (..., C) student logits.
        teacher: (..., C) teacher logits, same shape.
        targets: (...) true class ids, ``IGNORE_INDEX`` at padding.
        temperature: T > 0.
        alpha: weight of the soft targets in [0, 1].

    Returns:
        Scalar loss.

    Example::

        loss = soft_target_loss(student(x, lengths), teacher(x, lengths), y, 2.0, 0.5)
    """
    soft = matching_loss(student, teacher, targets, temperature)
    hard = F.cross_entropy(student.flatten(0, -2), targets.flatten(), ignore_index=IGNORE_INDEX)
    return alpha * soft + (1 - alpha) * hard


def matching_loss(student: Tensor, teacher: Tensor, targets: Tensor, temperature: float) -> Tensor:
    """The teacher term alone: ``T^2 * KL(teacher_T || student_T)`` over the positions whose
    target is not ``IGNORE_INDEX``, or the MSE between outputs when ``targets`` are floats.

    Only the targets' padding is used, so it suits inputs whose true targets are unknown.
    """
    if targets.is_floating_point():
        return F.mse_loss(student, teacher)
    valid = targets.flatten() != IGNORE_INDEX
    student, teacher = student.flatten(0, -2)[valid].float(), teacher.flatten(0, -2)[valid].float()
    teacher_log = F.log_softmax(teacher / temperature, dim=-1)
    student_log = F.log_softmax(student / temperature, dim=-1)
    return temperature**2 * (teacher_log.exp() * (teacher_log - student_log)).sum(-1).mean()


def perturb(batch: Batch, strength: float, vocab_size: int) -> Batch:
    """A copy of ``batch`` whose inputs are perturbed at their real (unpadded) steps.

    Numeric inputs (standardized per feature) get Gaussian noise of standard deviation
    ``strength``; each token is replaced, with probability ``strength``, by a uniformly random
    non-special token of the ``vocab_size`` ids. Lengths, targets and decoder inputs are kept
    (the targets only mark padding: they are not the perturbed inputs' labels).

    Example::

        noisy = perturb(batch, 0.1, model.spec.vocab_size)
    """
    inputs = batch.inputs
    real = length_mask(batch.lengths.to(inputs.device), inputs.size(1))
    if inputs.is_floating_point():
        noise = torch.randn_like(inputs) * strength
        inputs = inputs + noise * real.unsqueeze(-1)
    else:
        swap = (torch.rand(inputs.shape, device=inputs.device) < strength) & real
        random = torch.randint_like(inputs, len(SPECIALS), vocab_size)
        inputs = torch.where(swap, random, inputs)
    return Batch(inputs, batch.lengths, batch.targets, batch.decoder_inputs)


def regression_kd_loss(
    student: Tensor, teacher: Tensor, targets: Tensor, alpha: float, bounded: bool = False
) -> Tensor:
    """``alpha * MSE(student, teacher) + (1 - alpha) * MSE(student, targets)``.

    With ``bounded`` the teacher is an upper bound instead (Chen et al. 2017): the first term
    becomes the student's own squared error on the examples where it exceeds the teacher's.
    """
    hard = F.mse_loss(student, targets)
    if not bounded:
        return alpha * F.mse_loss(student, teacher) + (1 - alpha) * hard
    error = (student - targets).pow(2)
    worse = error.sum(-1, keepdim=True) > (teacher - targets).pow(2).sum(-1, keepdim=True)
    return alpha * (error * worse).mean() + (1 - alpha) * hard


class DistillObjective(nn.Module):
    """The distillation loss as a ``fit`` objective: ``objective(student, batch) -> loss``.

    Holds the frozen teacher outside its registered modules (so the optimizer never sees the
    teacher's weights) and, for hidden-state matching, a learned projection from the
    student's feature width to the teacher's.
    """

    def __init__(
        self,
        teacher: nn.Module,
        student: ModelSpec,
        config: DistillConfig,
        vocab: StudentVocab | None = None,
        cache: TeacherCache | None = None,
    ):
        super().__init__()
        self._teacher = [teacher]  # a list hides it from parameters(), to() and state_dict()
        self.config = config
        self.vocab = vocab  # batches come in the teacher's ids; the student reads its own
        self.task = TASKS[student.task]
        self.cache = cache  # the teacher's outputs per training example (edgernn.distill.cache)
        self.project: nn.Module | None = None
        if config.hidden_match > 0:
            width, target = feature_width(student), feature_width(teacher.spec)
            self.project = nn.Linear(width, target) if width != target else nn.Identity()

    def forward(self, model: nn.Module, batch: Batch) -> Tensor:
        teacher = self._teacher[0]
        with torch.no_grad():
            if self.cache is None:
                teacher_out, teacher_features = self._run(teacher, batch)
            else:
                teacher_out, teacher_features = self.cache.outputs(
                    batch, lambda b: self._run(teacher, b)
                )
        student_out, student_features = self._run(model, self._student(batch))
        config = self.config
        if model.spec.task == "regress":
            bounded = config.regression_kd == "bounded"
            loss = regression_kd_loss(
                student_out, teacher_out, batch.targets, config.alpha, bounded
            )
        else:
            loss = soft_target_loss(
                student_out, teacher_out, batch.targets, config.temperature, config.alpha
            )
        if self.project is not None:
            matched = hidden_loss(self.project(student_features), teacher_features, batch)
            loss = loss + config.hidden_match * matched
        if config.augment and config.alpha > 0:
            loss = loss + config.alpha * self._function_matching(model, batch, config.augment)
        return loss

    def _function_matching(self, model: nn.Module, batch: Batch, augment: float) -> Tensor:
        teacher = self._teacher[0]
        perturbed = perturb(batch, augment, teacher.spec.vocab_size)
        with torch.no_grad():
            teacher_out = self.task.forward(teacher, perturbed)
        student_out = self.task.forward(model, self._student(perturbed))
        return matching_loss(student_out, teacher_out, perturbed.targets, self.config.temperature)

    def _student(self, batch: Batch) -> Batch:
        return batch if self.vocab is None else self.vocab.batch(batch)

    def _run(self, model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor | None]:
        # The features the output layer reads enter the model's dropout layer: the pooled
        # vector for classify/regress, every step's top-layer output for tag and lm, and each
        # decoder step's [state; context] (one call per step) for seq2seq.
        if self.project is None:
            return self.task.forward(model, batch), None
        captured: list[Tensor] = []
        handle = model.dropout.register_forward_pre_hook(lambda _, args: captured.append(args[0]))
        try:
            output = self.task.forward(model, batch)
        finally:
            handle.remove()
        per_step = model.spec.task == "seq2seq"
        return output, torch.stack(captured, dim=1) if per_step else captured[0]


def feature_width(spec: ModelSpec) -> int:
    """Width of the features a model's output layer reads (what hidden matching compares)."""
    memory = spec.hidden * spec.directions
    if spec.task != "seq2seq":
        return memory
    return spec.hidden + memory if spec.attention == "bahdanau" else spec.hidden


def hidden_loss(student: Tensor, teacher: Tensor, batch: Batch) -> Tensor:
    """MSE between projected student and teacher features, over the batch's real steps."""
    if student.dim() == 2:
        return F.mse_loss(student, teacher)
    # Per-step features: compare the steps that have a target (not padding).
    real = batch.targets != IGNORE_INDEX
    return F.mse_loss(student[real], teacher[real])
