"""Padding, length-bucketed batching and the ``Batch`` every task's loss and metric read."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence

from edgernn.data.vocab import PAD_ID

IGNORE_INDEX = -100  # target value cross-entropy skips: padding positions
BUCKET_POOL = 50  # batches' worth of examples sorted together; more = tighter, less random


@dataclass
class Batch:
    inputs: torch.Tensor  # (B, T) token ids or (B, T, F) floats, zero-padded
    lengths: torch.Tensor  # (B,) int64 on CPU, as pack_padded_sequence wants
    targets: torch.Tensor  # (B,), (B, K) or (B, T) with IGNORE_INDEX on padding
    decoder_inputs: torch.Tensor | None = None  # seq2seq: <bos> + target, teacher forcing

    def to(self, device: torch.device | str) -> Batch:
        move = (lambda t: t.to(device)) if str(device) != "cpu" else (lambda t: t)
        decoder_inputs = None if self.decoder_inputs is None else move(self.decoder_inputs)
        return Batch(move(self.inputs), self.lengths, move(self.targets), decoder_inputs)


def collate(examples: Sequence[tuple[torch.Tensor, torch.Tensor]], task: str) -> Batch:
    """Pad a list of ``(inputs, target)`` pairs into one ``Batch``."""
    inputs = pad_sequence([x for x, _ in examples], batch_first=True, padding_value=PAD_ID)
    lengths = torch.tensor([len(x) for x, _ in examples], dtype=torch.long)
    targets = [y for _, y in examples]
    if task in ("classify", "regress"):
        return Batch(inputs, lengths, torch.stack(targets))
    if task in ("tag", "lm"):
        padded = pad_sequence(targets, batch_first=True, padding_value=IGNORE_INDEX)
        return Batch(inputs, lengths, padded)
    framed = pad_sequence(targets, batch_first=True, padding_value=PAD_ID)
    decoder_targets = framed[:, 1:].masked_fill(framed[:, 1:] == PAD_ID, IGNORE_INDEX)
    return Batch(inputs, lengths, decoder_targets, decoder_inputs=framed[:, :-1])


def batch_indices(
    lengths: Sequence[int],
    batch_size: int,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """Group example indices into batches of similar length.

    Without a generator the order is deterministic (sorted by length), for evaluation.
    With one, examples are shuffled, sorted by length within pools of ``BUCKET_POOL``
    batches (so little compute goes to padding), and the batches shuffled again.
    """
    if generator is None:
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    order = torch.randperm(len(lengths), generator=generator).tolist()
    pool = batch_size * BUCKET_POOL
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    shuffle = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffle]


def example_lengths(examples: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> Sequence[int]:
    """Every example's input length; a split on disk (``ShardSplit``) knows them unread."""
    lengths = getattr(examples, "lengths", None)
    return lengths if lengths is not None else [len(x) for x, _ in examples]


def iterate_batches(
    examples: Sequence[tuple[torch.Tensor, torch.Tensor]],
    task: str,
    batch_size: int,
    generator: torch.Generator | None = None,
) -> Iterator[Batch]:
    """Yield padded batches; shuffled and length-bucketed when a generator is given."""
    for indices in batch_indices(example_lengths(examples), batch_size, generator):
        yield collate([examples[i] for i in indices], task)
