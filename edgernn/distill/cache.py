"""The teacher's outputs on the training examples, computed once and reused.

The teacher is frozen and runs in eval mode, so what it gives for a training example is the
same every epoch and every trial of a search: only the first pass pays for its forward. Rows
are keyed by the example's own (unpadded) inputs, so any batching or shuffling finds them; a
batch with any unseen row runs the teacher whole and stores its rows. The caches live for the
process, one per teacher (by the bytes of its weights) and per kind of output, so a search's
trials in one worker share one. Perturbed inputs (function matching) are random and never
cached; neither are seq2seq batches, whose outputs also depend on the decoder inputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import torch
from torch import Tensor, nn

from edgernn.data import Batch

# Beyond this, rows are computed as before and not kept: a bound for large datasets.
MAX_BYTES = 1 << 30
Outputs = tuple[Tensor, Tensor | None]  # (teacher outputs, matched features or None)


class TeacherCache:
    """Per-example teacher outputs (and features), on the CPU, within ``max_bytes``."""

    def __init__(self, per_step: bool, max_bytes: int = MAX_BYTES):
        self.per_step = per_step  # outputs (B, T, ...) of tag and lm: keep the real steps
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = self.misses = 0  # batches, for the tests and for curiosity
        self._rows: dict[bytes, tuple[Tensor, Tensor | None]] = {}

    def outputs(self, batch: Batch, run: Callable[[Batch], Outputs]) -> Outputs:
        """``run(batch)``, or the same rows assembled from the cache when every row is in it."""
        lengths, inputs = batch.lengths.tolist(), batch.inputs.cpu()  # one copy off a GPU
        keys = [_key(row, length) for row, length in zip(inputs, lengths, strict=True)]
        if all(key in self._rows for key in keys):
            self.hits += 1
            return self._assemble(keys, batch)
        self.misses += 1
        output, features = run(batch)
        self._store(keys, lengths, output, features)
        return output, features

    def _store(self, keys, lengths, output: Tensor, features: Tensor | None) -> None:
        for index, (key, length) in enumerate(zip(keys, lengths, strict=True)):
            row = tuple(
                None if t is None else (t[index, :length] if self.per_step else t[index])
                for t in (output, features)
            )
            row = tuple(None if t is None else t.detach().cpu().clone() for t in row)
            size = sum(t.numel() * t.element_size() for t in row if t is not None)
            if self.bytes + size > self.max_bytes:
                return
            self._rows[key], self.bytes = row, self.bytes + size

    def _assemble(self, keys: list[bytes], batch: Batch) -> Outputs:
        rows = [self._rows[key] for key in keys]
        steps, device = batch.inputs.size(1), batch.inputs.device
        output = self._stack([r[0] for r in rows], steps).to(device)
        if rows[0][1] is None:
            return output, None
        return output, self._stack([r[1] for r in rows], steps).to(device)

    def _stack(self, rows: list[Tensor], steps: int) -> Tensor:
        if not self.per_step:
            return torch.stack(rows)
        # Padding steps come back as zeros: every loss masks them (IGNORE_INDEX targets).
        out = rows[0].new_zeros(len(rows), steps, *rows[0].shape[1:])
        for index, row in enumerate(rows):
            out[index, : row.size(0)] = row
        return out


def _key(inputs: Tensor, length: int) -> bytes:
    # Inputs beyond the length are padding: the same example padded otherwise is the same key.
    return inputs[:length].numpy().tobytes() + length.to_bytes(4, "little")


_CACHES: dict[tuple, TeacherCache] = {}


def teacher_cache(teacher: nn.Module, features: bool) -> TeacherCache | None:
    """The process's cache for ``teacher`` (by its weights' bytes) and this kind of output.

    None for seq2seq teachers (teacher forcing makes the outputs depend on the targets too).
    """
    if teacher.spec.task == "seq2seq":
        return None
    digest = hashlib.sha256(repr(teacher.spec).encode())
    for name, tensor in teacher.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    key, per_step = (digest.hexdigest(), features), teacher.spec.task in ("tag", "lm")
    if not any(known[0] == key[0] for known in _CACHES):
        _CACHES.clear()  # a new teacher: the last one's rows are not needed any more
    return _CACHES.setdefault(key, TeacherCache(per_step))
