"""Classification metrics: accuracy and macro F1 (sklearn's definitions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgernn.metrics.checks import check_pair


def accuracy(predictions: Sequence[int], targets: Sequence[int]) -> float:
    """Fraction of predictions equal to their target.

    Args:
        predictions: predicted class per example.
        targets: true class per example, same length.

    Returns:
        Accuracy in [0, 1].

    Example::

        accuracy([0, 1, 1], [0, 1, 0])  # 0.666...
    """
    check_pair("accuracy", predictions, targets)
    return sum(p == t for p, t in zip(predictions, targets, strict=True)) / len(targets)


def macro_f1(predictions: Sequence[int], targets: Sequence[int], num_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in targets or predictions.

    Matches sklearn's ``f1_score(average="macro", zero_division=0)``: a class that never occurs
    in either input is left out rather than counted as 0 or 1.

    Args:
        predictions: predicted class per example, ints in ``[0, num_classes)``.
        targets: true class per example, same length and range.
        num_classes: size of the label set; used to reject out-of-range labels.

    Returns:
        Macro F1 in [0, 1].

    Example::

        macro_f1([0, 1, 1], [0, 1, 0], num_classes=3)  # 0.666... (class 2 is absent)
    """
    check_pair("macro_f1", predictions, targets)
    pred, true = np.asarray(predictions), np.asarray(targets)
    for name, labels in (("predictions", pred), ("targets", true)):
        if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(f"macro_f1: {name} must be ints in [0, {num_classes})")
    true_pos = np.bincount(true[pred == true], minlength=num_classes)
    pred_count = np.bincount(pred, minlength=num_classes)
    true_count = np.bincount(true, minlength=num_classes)
    present = (pred_count + true_count) > 0
    # 2TP / (2TP + FP + FN) is F1 without dividing by a possibly-zero precision or recall.
    f1 = 2 * true_pos[present] / (pred_count[present] + true_count[present])
    return float(f1.mean())
