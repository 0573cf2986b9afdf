"""Sizing a student: the teacher's shape within a parameter budget, counted without weights."""

from __future__ import annotations

from dataclasses import replace

import torch

from edgernn.config import ModelSpec
from edgernn.distill.config import StudentConfig
from edgernn.errors import EdgeRNNError
from edgernn.models import build_model


def count_params(spec: ModelSpec) -> int:
    """Parameters of the model ``spec`` describes, counted without allocating its weights."""
    with torch.device("meta"):
        return sum(p.numel() for p in build_model(spec).parameters())


def student_spec(
    teacher: ModelSpec, config: StudentConfig, vocab_size: int | None = None
) -> ModelSpec:
    """The student's ``ModelSpec``: the teacher's task, sizes and vocabulary, a smaller network.

    Args:
        teacher: the teacher's spec.
        config: the student's choices; unset width fits ``config.max_param_ratio``.
        vocab_size: the student's pruned source vocabulary (``edgernn.distill.vocab``);
            None: the teacher's.

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
        vocab_size=vocab_size or teacher.vocab_size,
        **_embedding(teacher, config),
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


def _embedding(teacher: ModelSpec, config: StudentConfig) -> dict:
    """The student's table: the teacher's kind unless a rank or buckets are asked for."""
    rank, buckets = config.embed_rank, config.embed_buckets
    if (rank or buckets) and teacher.vocab_size == 0:
        raise EdgeRNNError(
            "--embed-rank/--embed-buckets apply to token inputs; this model reads numbers"
        )
    if rank is None and buckets is None:
        return {"embed_rank": teacher.embed_rank, "embed_buckets": teacher.embed_buckets}
    return {"embed_rank": rank or 0, "embed_buckets": buckets or 0}


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
