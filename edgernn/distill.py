"""Knowledge distillation: train a smaller student to imitate a trained teacher.

Soft targets follow Hinton et al. (2015): ``alpha * T^2 * KL(teacher_T || student_T) +
(1 - alpha) * CE``; regression mixes the MSE to the teacher's outputs with the MSE to the true
targets. Seq2seq adds sequence-level distillation (Kim & Rush 2016): the student learns the
teacher's beam-search outputs instead of the references. The student is a plain zoo model with
its own ``ModelSpec`` and shares the teacher's vocabulary, labels and normalization.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgernn.config import CELLS, ModelSpec, TrainConfig
from edgernn.data import Batch, TaskData
from edgernn.data.batching import IGNORE_INDEX
from edgernn.data.vocab import BOS_ID, EOS_ID
from edgernn.errors import EdgeRNNError
from edgernn.evaluate import EVAL_BATCH
from edgernn.models import build_model
from edgernn.models.encoder import length_mask
from edgernn.tasks import DECODE_MARGIN, TASKS
from edgernn.train import fit

SEQ2SEQ_MODES = ("word", "sequence", "both")
# Measured on the builtin datasets (benchmarks/results/distill_study.md): T = 2 helped the
# few-class tasks, T = 1 the per-step distributions over a vocabulary (as in Kim & Rush).
DEFAULT_TEMPERATURE = {"classify": 2.0, "tag": 2.0, "lm": 1.0, "seq2seq": 1.0, "regress": 1.0}


def default_train_config() -> TrainConfig:
    """Training budget of a student: longer than a teacher's, small models converge slowly."""
    return TrainConfig(epochs=40, patience=10)


@dataclass(frozen=True)
class StudentConfig:
    """The student's shape; a field left ``None`` follows the teacher or the parameter budget.

    Example::

        StudentConfig(cell="gru", bidirectional=False)   # width chosen to fit 1/4 of the teacher
    """

    hidden: int | None = None  # None: the widest student within max_param_ratio
    embed: int | None = None  # None: the teacher's embedding scaled like the hidden width
    layers: int | None = None  # None: as many as the teacher
    cell: str | None = None  # None: the teacher's cell type
    bidirectional: bool | None = None  # None: as the teacher; False: one-way student
    dropout: float | None = None  # None: the teacher's
    max_param_ratio: float = 0.25  # budget for automatic sizing: student / teacher parameters

    def __post_init__(self) -> None:
        if self.cell is not None and self.cell not in CELLS:
            raise EdgeRNNError(f"unknown student cell {self.cell!r}; choose one of rnn, lstm, gru")
        for name in ("hidden", "embed", "layers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise EdgeRNNError(f"student {name} must be at least 1, got {value}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise EdgeRNNError(f"student dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.max_param_ratio <= 1.0:
            raise EdgeRNNError(f"max_param_ratio must be in (0, 1], got {self.max_param_ratio}")


@dataclass(frozen=True)
class DistillConfig:
    """How the student learns from the teacher; defaults chosen on the builtin datasets."""

    temperature: float | None = None  # softens both distributions; None: per task, see above
    alpha: float = 0.5  # weight of the teacher's targets; 1 - alpha goes to the true targets
    hidden_weight: float = 0.0  # hidden-state matching through a learned projection; 0 is off
    seq2seq: str = "word"  # word-level KD, sequence-level KD (teacher's beams) or both
    beam: int = 4  # beam width of the teacher's outputs for sequence-level KD
    train: TrainConfig = field(default_factory=default_train_config)

    def __post_init__(self) -> None:
        if self.temperature is not None and not self.temperature > 0:
            raise EdgeRNNError(f"temperature must be positive, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise EdgeRNNError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.hidden_weight < 0:
            raise EdgeRNNError(f"hidden_weight must be >= 0, got {self.hidden_weight}")
        if self.seq2seq not in SEQ2SEQ_MODES:
            raise EdgeRNNError(
                f"unknown seq2seq distillation {self.seq2seq!r}; choose word, sequence or both"
            )
        if self.beam < 1:
            raise EdgeRNNError(f"beam must be at least 1, got {self.beam}")


def count_params(spec: ModelSpec) -> int:
    """Parameters of the model ``spec`` describes, counted without allocating its weights."""
    with torch.device("meta"):
        return sum(p.numel() for p in build_model(spec).parameters())


def student_spec(teacher: ModelSpec, config: StudentConfig) -> ModelSpec:
    """The student's ``ModelSpec``: the teacher's task, sizes and vocabulary, a smaller network.

    Args:
        teacher: the teacher's spec.
        config: the student's choices; unset width fits ``config.max_param_ratio``.

    Returns:
        A spec with at most as many parameters as the teacher.

    Raises:
        EdgeRNNError: a bidirectional language model, or a student bigger than the teacher.
    """
    bidirectional = teacher.bidirectional if config.bidirectional is None else config.bidirectional
    if bidirectional and teacher.task == "lm":
        raise EdgeRNNError("a language-model student cannot be bidirectional")
    base = replace(
        teacher,
        cell=config.cell or teacher.cell,
        layers=config.layers or teacher.layers,
        bidirectional=bidirectional,
        dropout=teacher.dropout if config.dropout is None else config.dropout,
    )
    budget = config.max_param_ratio * count_params(teacher)
    hidden = config.hidden or _widest(base, config.embed, budget)
    spec = replace(base, hidden=hidden, embed=config.embed or _scaled_embed(teacher, hidden))
    student, full = count_params(spec), count_params(teacher)
    if student > full:
        raise EdgeRNNError(
            f"the student ({student:,} parameters, hidden {spec.hidden}) is bigger than the "
            f"teacher ({full:,}, hidden {teacher.hidden}); choose a smaller student"
        )
    return spec


def _scaled_embed(teacher: ModelSpec, hidden: int) -> int:
    return max(1, round(teacher.embed * hidden / teacher.hidden))


def _widest(base: ModelSpec, embed: int | None, budget: float) -> int:
    # Parameters grow with the width, so binary search the widest student within budget.
    def size(hidden: int) -> int:
        return count_params(
            replace(base, hidden=hidden, embed=embed or _scaled_embed(base, hidden))
        )

    low, high = 1, base.hidden
    if size(low) > budget:
        raise EdgeRNNError(
            f"no student fits {budget:,.0f} parameters; set the student's hidden/embed sizes"
        )
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if size(middle) <= budget else (low, middle - 1)
    return low


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
    student, teacher = student.flatten(0, -2), teacher.flatten(0, -2)
    targets = targets.flatten()
    valid = targets != IGNORE_INDEX
    teacher_log = F.log_softmax(teacher[valid].float() / temperature, dim=-1)
    student_log = F.log_softmax(student[valid].float() / temperature, dim=-1)
    kl = (teacher_log.exp() * (teacher_log - student_log)).sum(-1).mean()
    hard = F.cross_entropy(student[valid], targets[valid])
    return alpha * temperature**2 * kl + (1 - alpha) * hard


def regression_kd_loss(student: Tensor, teacher: Tensor, targets: Tensor, alpha: float) -> Tensor:
    """``alpha * MSE(student, teacher) + (1 - alpha) * MSE(student, targets)``."""
    return alpha * F.mse_loss(student, teacher) + (1 - alpha) * F.mse_loss(student, targets)


class DistillObjective(nn.Module):
    """The distillation loss as a ``fit`` objective: ``objective(student, batch) -> loss``.

    Holds the frozen teacher outside its registered modules (so the optimizer never sees the
    teacher's weights) and, for hidden-state matching, a learned projection from the
    student's feature width to the teacher's.
    """

    def __init__(self, teacher: nn.Module, student: ModelSpec, config: DistillConfig):
        super().__init__()
        self._teacher = [teacher]  # a list hides it from parameters(), to() and state_dict()
        self.config = config
        self.task = TASKS[student.task]
        self.project: nn.Module | None = None
        if config.hidden_weight > 0:
            width = student.hidden * student.directions
            target = teacher.spec.hidden * teacher.spec.directions
            self.project = nn.Linear(width, target) if width != target else nn.Identity()

    def forward(self, model: nn.Module, batch: Batch) -> Tensor:
        teacher = self._teacher[0]
        with torch.no_grad():
            teacher_out, teacher_features = self._run(teacher, batch)
        student_out, student_features = self._run(model, batch)
        config = self.config
        if model.spec.task == "regress":
            loss = regression_kd_loss(student_out, teacher_out, batch.targets, config.alpha)
        else:
            temperature = config.temperature or DEFAULT_TEMPERATURE[model.spec.task]
            loss = soft_target_loss(
                student_out, teacher_out, batch.targets, temperature, config.alpha
            )
        if self.project is not None:
            matched = _hidden_loss(self.project(student_features), teacher_features, batch)
            loss = loss + config.hidden_weight * matched
        return loss

    def _run(self, model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor | None]:
        # The features the head reads enter the model's dropout layer: the pooled vector for
        # classify/regress, every step's top-layer output for tag and lm.
        if self.project is None:
            return self.task.forward(model, batch), None
        captured: list[Tensor] = []
        handle = model.dropout.register_forward_pre_hook(lambda _, args: captured.append(args[0]))
        try:
            return self.task.forward(model, batch), captured[0]
        finally:
            handle.remove()


def _hidden_loss(student: Tensor, teacher: Tensor, batch: Batch) -> Tensor:
    if student.dim() == 2:
        return F.mse_loss(student, teacher)
    mask = length_mask(batch.lengths.to(student.device), student.size(1))
    return F.mse_loss(student[mask], teacher[mask])


@torch.no_grad()
def sequence_kd_data(teacher: nn.Module, data: TaskData, beam: int, device: str) -> TaskData:
    """Replace each training target by the teacher's beam-search output (Kim & Rush 2016).

    Valid and test keep their references, so early stopping and metrics stay honest.

    Args:
        teacher: a trained seq2seq model.
        data: encoded seq2seq data.
        beam: beam width.
        device: where the teacher runs.

    Returns:
        A new ``TaskData``; ``data`` is not modified.
    """
    train = data.splits["train"]
    relabelled = []
    for start in range(0, len(train), EVAL_BATCH):
        chunk = train[start : start + EVAL_BATCH]
        lengths = torch.tensor([len(src) for src, _ in chunk])
        sources = nn.utils.rnn.pad_sequence([src for src, _ in chunk], batch_first=True)
        limit = 2 * int(lengths.max()) + DECODE_MARGIN
        outputs = teacher.beam_search(sources.to(device), lengths, beam, limit)
        relabelled += [
            (src, torch.tensor([BOS_ID, *ids, EOS_ID]))
            for (src, _), ids in zip(chunk, outputs, strict=True)
        ]
    return TaskData(data.meta, data.splits | {"train": relabelled})


def distill(
    teacher: nn.Module,
    data: TaskData,
    student: StudentConfig | None = None,
    config: DistillConfig | None = None,
    device: str = "cpu",
) -> nn.Module:
    """Train a student to imitate ``teacher`` on the teacher's training data.

    Args:
        teacher: a trained zoo model (with ``.spec``); it is not modified.
        data: encoded with the teacher's ``DataMeta`` (same vocabulary, labels, scaling).
        student: the student's shape; default: the teacher's, at 1/4 of its parameters.
        config: losses and training settings.
        device: ``cpu`` or ``cuda``.

    Returns:
        The trained student (best validation epoch), a plain zoo model in eval mode.

    Example::

        student = distill(load_checkpoint("teacher.pt").build(), data, StudentConfig(hidden=64))
    """
    student, config = student or StudentConfig(), config or DistillConfig()
    spec = student_spec(teacher.spec, student)
    if spec.task == "seq2seq" and config.hidden_weight > 0:
        raise EdgeRNNError("hidden-state matching is not available for seq2seq; set it to 0")
    teacher = copy.deepcopy(teacher).to(device).eval().requires_grad_(False)
    if spec.task == "seq2seq" and config.seq2seq != "word":
        data = sequence_kd_data(teacher, data, config.beam, device)
    # Seeded exactly like ``train`` so a student trained from scratch starts from the same weights.
    torch.manual_seed(config.train.seed)
    model = build_model(spec)
    sequence_only = spec.task == "seq2seq" and config.seq2seq == "sequence"
    objective = None if sequence_only else DistillObjective(teacher, spec, config)
    return fit(model, data, config.train, device, objective)
