"""Vocabulary pruning: the student keeps the teacher's most frequent training tokens.

Real text follows Zipf's law: a few thousand words cover nearly every running token, while
the long tail fills most of the embedding table. The student keeps the reserved tokens and
the most frequent others (``--vocab-size N``, or as few as cover ``--vocab-coverage`` of the
training tokens); every dropped token becomes ``<unk>``, as an unknown word does at run time.
The teacher still reads its own ids during distillation: only the student's inputs are mapped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from edgernn.data import Batch, TaskData
from edgernn.data.vocab import SPECIALS, UNK_ID
from edgernn.distill.config import StudentConfig
from edgernn.errors import EdgeRNNError

TASKS = ("classify", "tag", "seq2seq")  # the source vocabulary; an LM's is also its output


@dataclass(frozen=True)
class StudentVocab:
    """The student's vocabulary as a map from the teacher's token ids."""

    kept: Tensor  # (student vocab,) the teacher id of each student id, specials first
    remap: Tensor  # (teacher vocab,) teacher id -> student id; a dropped token -> <unk>
    coverage: float  # share of the training tokens the student keeps

    def __len__(self) -> int:
        return len(self.kept)

    def ids(self, teacher_ids: Tensor) -> Tensor:
        """The student's ids of ``teacher_ids`` (any shape)."""
        return self.remap.to(teacher_ids.device)[teacher_ids]

    def batch(self, batch: Batch) -> Batch:
        """``batch`` with the student's input ids (targets and decoder inputs unchanged)."""
        return replace(batch, inputs=self.ids(batch.inputs))

    def encode(self, data: TaskData) -> TaskData:
        """``data`` in the student's ids: its vocabulary, every split's inputs mapped."""
        vocab = [data.meta.vocab[i] for i in self.kept.tolist()]
        splits = {
            name: [(self.ids(inputs), target) for inputs, target in examples]
            for name, examples in data.splits.items()
        }
        return TaskData(replace(data.meta, vocab=vocab), splits)

    def note(self, teacher_size: int) -> str:
        return (
            f"vocabulary: the student keeps {len(self):,} of the teacher's {teacher_size:,} "
            f"tokens ({100 * self.coverage:.1f} % of the training tokens); the rest read as <unk>"
        )


def student_vocab(data: TaskData, config: StudentConfig) -> StudentVocab | None:
    """The pruned vocabulary ``config`` asks for, or None when it asks for none.

    Args:
        data: the teacher's encoded data; tokens are ranked by their count in its train split
            (ties: the teacher's order, which edgernn's vocabularies already rank by count).
        config: ``vocab_size`` or ``vocab_coverage``.

    Returns:
        None when neither is set, or when the teacher's vocabulary is already that small.

    Raises:
        EdgeRNNError: the task has no prunable vocabulary.
    """
    if config.vocab_size is None and config.vocab_coverage is None:
        return None
    task, vocab = data.meta.task, data.meta.vocab
    if task not in TASKS or vocab is None:
        raise EdgeRNNError(
            f"vocabulary pruning applies to token inputs of {', '.join(TASKS)} models, not to "
            f"a {task} model{'' if vocab else ' with numeric inputs'}; drop --vocab-size/"
            "--vocab-coverage"
        )
    counts = _train_counts(data, len(vocab))
    ranked = sorted(range(len(SPECIALS), len(vocab)), key=lambda i: (-counts[i], i))
    size = _size(counts, ranked, config)
    if size >= len(vocab):
        return None
    kept = torch.tensor([*range(len(SPECIALS)), *ranked[: size - len(SPECIALS)]])
    remap = torch.full((len(vocab),), UNK_ID, dtype=torch.long)
    remap[kept] = torch.arange(len(kept))
    total = counts[len(SPECIALS) :].sum()
    covered = counts[kept[len(SPECIALS) :]].sum()
    return StudentVocab(kept, remap, float(covered / total) if total else 1.0)


def _train_counts(data: TaskData, size: int) -> Tensor:
    # Ids past the vocabulary list (an embedding with spare rows) never occur in encoded data.
    ids = torch.cat([inputs.flatten() for inputs, _ in data.splits["train"]])
    return torch.bincount(ids, minlength=size)[:size]


def _size(counts: Tensor, ranked: list[int], config: StudentConfig) -> int:
    if config.vocab_size is not None:
        return config.vocab_size
    ordered = counts[ranked].double()
    total = ordered.sum()
    if total == 0:
        return len(SPECIALS) + 1
    covered = torch.cumsum(ordered, 0) / total
    needed = int(torch.searchsorted(covered, config.vocab_coverage - 1e-12)) + 1
    return len(SPECIALS) + min(needed, len(ranked))
