"""Signed sequence sum: a variable-length generalisation of the classic "adding problem".

Each step carries a value uniform in [-1, 1] and a marker in {-1, 0, +1}; the target is the sum of
value * marker over the whole sequence. Nothing about the answer is visible at any single step:
the model has to keep an exact running total through up to 30 steps of distracting values, which
a recurrent net with few units does only approximately.
"""

from __future__ import annotations

import numpy as np

from edgernn.data.builtin import numeric_splits, register
from edgernn.data.raw import RawData

_MIN_LEN, _MAX_LEN = 5, 30
_MARKER_P = (0.3, 0.4, 0.3)  # P(marker = -1, 0, +1): most steps count, some are distractors
_SIZES = {"train": 5000, "valid": 500, "test": 1000}


def _example(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    length = int(rng.integers(_MIN_LEN, _MAX_LEN + 1))
    values = rng.uniform(-1.0, 1.0, size=length)
    markers = rng.choice([-1.0, 0.0, 1.0], size=length, p=_MARKER_P)
    x = np.stack([values, markers], axis=1).astype(np.float32)
    y = np.array([np.sum(values * markers)], dtype=np.float32)
    return x, y


@register("seqsum", "regress", "signed adding problem: sum of value*marker over 5-30 steps")
def generate(seed: int) -> RawData:
    """Numeric sequences ``x`` (T, 2) with ``y`` (1,) = sum of value * marker."""
    splits = numeric_splits(seed, _SIZES, _example)
    return RawData(task="regress", tokens=None, **splits)
