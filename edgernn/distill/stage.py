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

import torch
from torch import nn

from edgernn.data import TaskData
from edgernn.data.vocab import BOS_ID, EOS_ID
from edgernn.distill.config import DistillConfig, StudentConfig
from edgernn.distill.loss import DistillObjective
from edgernn.distill.student import student_spec
from edgernn.evaluate import EVAL_BATCH
from edgernn.models import build_model
from edgernn.train import fit


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
        outputs = teacher.beam_search(sources.to(device), lengths, beam)  # per-row limits
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
    if spec.task == "seq2seq" and config.seq_kd != "word":
        data = sequence_kd_data(teacher, data, config.beam, device)
    # Seeded exactly like ``train`` so a student trained from scratch starts from the same weights.
    torch.manual_seed(config.train.seed)
    model = build_model(spec)
    sequence_only = spec.task == "seq2seq" and config.seq_kd == "sequence"
    objective = None if sequence_only else DistillObjective(teacher, spec, config)
    return fit(model, data, config.train, device, objective)
