"""Argument checks the metric functions share."""

from __future__ import annotations

from collections.abc import Sequence


def check_pair(what: str, predicted: Sequence, gold: Sequence) -> None:
    if len(predicted) != len(gold):
        raise ValueError(
            f"{what}: got {len(predicted)} predictions but {len(gold)} references; "
            "pass one prediction per reference"
        )
    if len(gold) == 0:
        raise ValueError(f"{what}: inputs are empty; a metric needs at least one example")
