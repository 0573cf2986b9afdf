"""A compiled C export behind a zoo model's call, so edgernn's own metric code scores it.

``CModule(binary, checkpoint)`` takes the padded ``(inputs, lengths)`` batches that
``edgernn.evaluate.evaluate`` hands a model and answers with the C code's outputs, one
sequence per harness call. Integer-only exports work alike: their harness takes and gives
floats (``templates/harness.c``).

Example::

    binary = compile_harness(Path("firmware/model"), Path("firmware/harness"))
    scores = evaluate(CModule(binary, checkpoint), test_examples, checkpoint.meta)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgernn.c.harness import run_harness
from edgernn.c.layout import per_step


def scaling(norm: dict, side: str) -> tuple[np.ndarray, np.ndarray]:
    """The data meta's ``(mean, std)`` of ``side`` ("x" or "y") as float32 arrays."""
    return tuple(np.asarray(norm[f"{side}_{k}"], np.float32) for k in ("mean", "std"))


def raw_features(frames: np.ndarray, norm: dict) -> np.ndarray:
    """Undo the data layer's normalization: the C code takes raw features."""
    mean, std = scaling(norm, "x")
    return (frames * std + mean).astype(np.float32)


class CModule(nn.Module):
    """The compiled C harness (``compile_harness``) of ``checkpoint``'s export, as a model.

    Args:
        binary: the harness built from the export's model.c.
        checkpoint: the checkpoint it was exported from (its spec and data scaling).
    """

    def __init__(self, binary: Path, checkpoint):
        super().__init__()
        self.binary, self.spec, self.norm = binary, checkpoint.spec, checkpoint.meta.norm

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        spec, rows = self.spec, []
        for row, length in zip(inputs, lengths.tolist(), strict=True):
            frames = row[:length].numpy()
            if spec.vocab_size:  # the data layer hands token ids; the C code takes int32
                rows.append(frames.astype(np.int32))
            else:  # ... and normalized features; the C code normalizes raw ones itself
                rows.append(raw_features(frames, self.norm))
        steps = per_step(spec)
        outputs = run_harness(self.binary, rows, spec.num_outputs, steps)
        if spec.task == "regress":  # evaluate de-normalizes; the C code already did
            mean, std = scaling(self.norm, "y")
            outputs = [(o - mean) / std for o in outputs]
        if not steps:
            return torch.from_numpy(np.stack(outputs))
        padded = torch.zeros(len(rows), inputs.size(1), spec.num_outputs)
        for index, out in enumerate(outputs):
            padded[index, : len(rows[index])] = torch.from_numpy(out).view(-1, spec.num_outputs)
        return padded


class CTranslator(nn.Module):
    """A seq2seq C export's ``edgernn_translate`` (greedy) behind a zoo model's ``greedy``,
    so edgernn's seq2seq metric code scores it; one source per call.

    Args:
        library: the export built as ``edgernn.c.library.CLibrary``.
    """

    def __init__(self, library):
        super().__init__()
        self.library = library

    def greedy(self, inputs: torch.Tensor, lengths: torch.Tensor, max_len=None) -> list:
        rows = zip(inputs, lengths.tolist(), strict=True)
        return [self.library.run(row[:n].numpy().astype(np.int32)).tolist() for row, n in rows]
