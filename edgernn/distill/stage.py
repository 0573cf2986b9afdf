"""Knowledge distillation: train a smaller student to imitate a trained teacher.

Soft targets follow Hinton et al. (2015): ``alpha * T^2 * KL(teacher_T || student_T) +
(1 - alpha) * CE``; regression mixes the MSE to the teacher's outputs with the MSE to the true
targets. Seq2seq adds sequence-level distillation (Kim & Rush 2016): the student learns the
teacher's beam-search outputs instead of the references. Function matching (Beyer et al. 2022)
also matches the teacher on perturbed, unlabelled inputs. The student is a plain zoo model with
its own ``ModelSpec`` and shares the teacher's labels and normalization, and its vocabulary
unless one is pruned (``edgernn.distill.vocab``).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from edgernn.data import TaskData
from edgernn.data.vocab import BOS_ID, EOS_ID
from edgernn.distill.cache import teacher_cache
from edgernn.distill.config import DistillConfig, StudentConfig
from edgernn.distill.loss import DistillObjective
from edgernn.distill.student import student_spec
from edgernn.distill.vocab import StudentVocab
from edgernn.evaluate import EVAL_BATCH
from edgernn.models import build_model
from edgernn.models.embedding import low_rank_init
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
    vocab: StudentVocab | None = None,
) -> nn.Module:
    """Train a student to imitate ``teacher`` on the teacher's training data.

    Args:
        teacher: a trained zoo model (with ``.spec``); it is not modified.
        data: encoded with the teacher's ``DataMeta`` (same vocabulary, labels, scaling).
        student: the student's shape; default: the teacher's, at 1/4 of its parameters.
        config: losses and training settings.
        device: ``cpu`` or ``cuda``.
        vocab: the student's pruned vocabulary (``student_vocab``); its inputs are the
            teacher's mapped through it (``vocab.encode(data)`` scores the student).

    Returns:
        The trained student (best validation epoch), a plain zoo model in eval mode. A
        low-rank embedding starts from the teacher's table (its kept rows) by SVD.

    Example::

        student = distill(load_checkpoint("teacher.pt").build(), data, StudentConfig(hidden=64))
    """
    student = student or StudentConfig()
    spec = student_spec(teacher.spec, student, len(vocab) if vocab else None)
    config = (config or DistillConfig()).for_task(spec.task)
    teacher = copy.deepcopy(teacher).to(device).eval().requires_grad_(False)
    if spec.task == "seq2seq" and config.seq_kd != "word":
        data = sequence_kd_data(teacher, data, config.beam, device)
    # Seeded exactly like ``train`` so a student trained from scratch starts from the same weights.
    torch.manual_seed(config.train.seed)
    model = build_model(spec)
    if spec.embed_rank:
        low_rank_init(model.encoder.embedding, _teacher_table(teacher, vocab, spec.vocab_size))
    sequence_only = spec.task == "seq2seq" and config.seq_kd == "sequence"
    cache = teacher_cache(teacher, features=config.hidden_match > 0)
    objective = None if sequence_only else DistillObjective(teacher, spec, config, vocab, cache)
    return fit(
        model, _student_data(data, vocab, objective is not None), config.train, device, objective
    )


@torch.no_grad()
def _teacher_table(teacher: nn.Module, vocab: StudentVocab | None, rows: int) -> torch.Tensor:
    # Every token's embedding as the teacher computes it (full or low-rank table alike).
    ids = vocab.kept if vocab is not None else torch.arange(rows)
    device = next(teacher.parameters()).device
    return teacher.encoder.embedding(ids.to(device)).cpu()


def _student_data(data: TaskData, vocab: StudentVocab | None, teacher_reads: bool) -> TaskData:
    """The splits ``fit`` trains and scores the student on: in the student's ids.

    With a teacher in the loop the training inputs stay the teacher's ids, which the
    objective maps for the student (``DistillObjective``).
    """
    if vocab is None:
        return data
    student = vocab.encode(data)
    if not teacher_reads:
        return student
    return TaskData(student.meta, student.splits | {"train": data.splits["train"]})
