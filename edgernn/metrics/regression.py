"""Regression metrics: mean squared and mean absolute error, without broadcasting."""

from __future__ import annotations

import numpy as np


def _as_float_pair(what: str, pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, ...]:
    pred_arr = np.asarray(pred, dtype=np.float64)
    target_arr = np.asarray(target, dtype=np.float64)
    # No broadcasting: a (n, 1) vs (n,) mix-up would silently average an n-by-n grid.
    if pred_arr.shape != target_arr.shape:
        raise ValueError(f"{what}: shapes differ, {pred_arr.shape} vs {target_arr.shape}")
    if pred_arr.size == 0:
        raise ValueError(f"{what}: inputs are empty; a metric needs at least one value")
    return pred_arr, target_arr


def mse(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error over all elements.

    Args:
        pred: predictions.
        target: targets of the same shape.

    Returns:
        Mean of ``(pred - target) ** 2``.

    Example::

        mse(np.array([1.0, 2.0]), np.array([1.0, 4.0]))  # 2.0
    """
    pred_arr, target_arr = _as_float_pair("mse", pred, target)
    return float(np.mean((pred_arr - target_arr) ** 2))


def mae(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error over all elements.

    Args:
        pred: predictions.
        target: targets of the same shape.

    Returns:
        Mean of ``|pred - target|``.

    Example::

        mae(np.array([1.0, 2.0]), np.array([1.0, 4.0]))  # 1.0
    """
    pred_arr, target_arr = _as_float_pair("mae", pred, target)
    return float(np.mean(np.abs(pred_arr - target_arr)))
