"""Language-model metrics from a summed negative log-likelihood: perplexity, bits per char."""

from __future__ import annotations

import math

import numpy as np


def _mean_nll(total_nll: float, count: int) -> float:
    if count < 1:
        raise ValueError(f"count must be at least 1 token, got {count}")
    if total_nll < 0:
        raise ValueError(f"total_nll must be a non-negative sum of -log p, got {total_nll}")
    return total_nll / count


def perplexity(total_nll: float, count: int) -> float:
    """Perplexity ``exp(total_nll / count)``.

    Args:
        total_nll: summed negative log-likelihood in nats.
        count: number of predicted tokens.

    Returns:
        Perplexity (>= 1); ``inf`` if it overflows a float.

    Example::

        perplexity(10 * math.log(50), 10)  # 50.0: uniform over 50 symbols
    """
    mean = _mean_nll(total_nll, count)
    # Early in training the mean NLL can exceed ~709, where math.exp raises instead of
    # returning inf; inf is the honest answer and still compares correctly.
    return math.exp(mean) if mean < math.log(np.finfo(float).max) else math.inf


def bits_per_char(total_nll: float, count: int) -> float:
    """Bits per character ``total_nll / count / ln 2``.

    Args:
        total_nll: summed negative log-likelihood in nats.
        count: number of predicted characters.

    Returns:
        Mean NLL in bits.

    Example::

        bits_per_char(10 * math.log(256), 10)  # 8.0
    """
    return _mean_nll(total_nll, count) / math.log(2)
