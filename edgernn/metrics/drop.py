"""How much worse one score is than another, in the unit people quote for that metric.

Accuracy-like scores (percent) lose *points*; errors and perplexity, whose scale depends on the
data, lose *percent relative*. Every tolerance in edgernn (compress's ``--tolerance``, the
int8 ``--sensitivity`` and ``--int8-tolerance``) is in this unit.
"""

from __future__ import annotations

from edgernn.metrics.names import HIGHER_IS_BETTER

POINTS = "points"
RELATIVE = "% relative"


def metric_drop(reference: float, value: float, metric: str) -> float:
    """How much worse ``value`` is than ``reference``: points, or percent relative for errors.

    Example::

        metric_drop(99.0, 98.5, "accuracy")      # 0.5 (points)
        metric_drop(2.00, 2.04, "perplexity")    # 2.0 (percent relative)
    """
    if HIGHER_IS_BETTER[metric]:
        return reference - value
    return 100.0 * (value - reference) / abs(reference)


def drop_unit(metric: str) -> str:
    """The unit of ``metric_drop`` for ``metric``: ``"points"`` or ``"% relative"``.

    Example::

        f"{metric_drop(99.0, 98.5, 'accuracy'):.2g} {drop_unit('accuracy')}"   # '0.5 points'
    """
    return POINTS if HIGHER_IS_BETTER[metric] else RELATIVE
