"""Knowledge distillation: train a smaller student to imitate a trained teacher.

Soft targets follow Hinton et al. (2015): ``alpha * T^2 * KL(teacher_T || student_T) +
(1 - alpha) * CE``; regression mixes the MSE to the teacher's outputs with the MSE to the true
targets. Seq2seq adds sequence-level distillation (Kim & Rush 2016): the student learns the
teacher's beam-search outputs instead of the references. Function matching (Beyer et al. 2022)
also matches the teacher on perturbed, unlabelled inputs. The student is a plain zoo model with
its own ``ModelSpec`` and shares the teacher's vocabulary, labels and normalization.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from edgernn.config import CELLS, ModelSpec, TrainConfig
from edgernn.data import TaskData
from edgernn.data.vocab import BOS_ID, EOS_ID
from edgernn.distill_loss import DistillObjective
from edgernn.errors import EdgeRNNError
from edgernn.evaluate import EVAL_BATCH
from edgernn.models import build_model
from edgernn.tasks import DECODE_MARGIN
from edgernn.train import fit

SEQ2SEQ_MODES = ("word", "sequence", "both")
DEFAULT_AUGMENT = {"regress": 0.3}  # DistillConfig.augment when it is None; 0 elsewhere
REGRESSION_MODES = ("mse", "bounded")


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

    # Defaults measured on the builtin datasets, 3 seeds each (benchmarks/results/
    # distill_sweep.md): T = 1 beat 2 on ner and sentiment; hidden-state matching won charlm,
    # ner, translate and seqsum against plain soft targets.
    temperature: float = 1.0  # softens both distributions
    alpha: float = 0.5  # weight of the teacher's outputs; 1 - alpha goes to the true targets
    # Hidden-state matching (FitNets): MSE between the features the student's and the
    # teacher's output layers read, through a learned projection; 0 is off.
    hidden_weight: float = 1.0
    seq2seq: str = "word"  # word-level KD, sequence-level KD (teacher's beams) or both
    # regress: mse pulls towards the teacher's outputs; bounded (Chen et al. 2017) only adds
    # weight where the student is worse than the teacher, so the true targets stay the only
    # targets of the training inputs and the teacher teaches through function matching and
    # the hidden states. Plain mse lost to bounded on seqsum and forecast.
    regression: str = "bounded"
    beam: int = 4  # beam width of the teacher's outputs for sequence-level KD
    # Function matching (Beyer et al. 2022): also imitate the teacher on perturbed inputs,
    # weighted by alpha: Gaussian noise of this std on numeric inputs, token replacement with
    # this probability on text; 0 is off. None: per task (DEFAULT_AUGMENT): noise 0.3 for
    # regression, whose exact labels leave the teacher nothing to add on the training inputs;
    # off for text, where token replacement lost on ner.
    augment: float | None = None
    train: TrainConfig = field(default_factory=TrainConfig)  # the same budget as a teacher

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise EdgeRNNError(f"temperature must be positive, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise EdgeRNNError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.hidden_weight < 0:
            raise EdgeRNNError(f"hidden_weight must be >= 0, got {self.hidden_weight}")
        if self.seq2seq not in SEQ2SEQ_MODES:
            raise EdgeRNNError(
                f"unknown seq2seq distillation {self.seq2seq!r}; choose word, sequence or both"
            )
        if self.regression not in REGRESSION_MODES:
            raise EdgeRNNError(
                f"unknown regression distillation {self.regression!r}; choose mse or bounded"
            )
        if self.augment is not None and not 0.0 <= self.augment < 1.0:
            raise EdgeRNNError(f"augment must be in [0, 1), got {self.augment}")
        if self.beam < 1:
            raise EdgeRNNError(f"beam must be at least 1, got {self.beam}")

    def for_task(self, task: str) -> DistillConfig:
        """This config with its per-task defaults (``None`` fields) filled in."""
        if self.augment is not None:
            return self
        return replace(self, augment=DEFAULT_AUGMENT.get(task, 0.0))


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
    student = student or StudentConfig()
    spec = student_spec(teacher.spec, student)
    config = (config or DistillConfig()).for_task(spec.task)
    teacher = copy.deepcopy(teacher).to(device).eval().requires_grad_(False)
    if spec.task == "seq2seq" and config.seq2seq != "word":
        data = sequence_kd_data(teacher, data, config.beam, device)
    # Seeded exactly like ``train`` so a student trained from scratch starts from the same weights.
    torch.manual_seed(config.train.seed)
    model = build_model(spec)
    sequence_only = spec.task == "seq2seq" and config.seq2seq == "sequence"
    objective = None if sequence_only else DistillObjective(teacher, spec, config)
    return fit(model, data, config.train, device, objective)
