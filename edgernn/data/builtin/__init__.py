"""Embedded datasets (``builtin:NAME``): generated deterministically in seconds, no downloads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgernn.data.raw import RawData
from edgernn.errors import EdgeRNNError


@dataclass(frozen=True)
class Builtin:
    name: str
    task: str
    description: str
    generate: Callable[[int], RawData]  # seed -> all three splits


BUILTINS: dict[str, Builtin] = {}


def register(name: str, task: str, description: str):
    """Decorator adding a generator ``fn(seed) -> RawData`` to the registry."""

    def wrap(generate: Callable[[int], RawData]) -> Callable[[int], RawData]:
        BUILTINS[name] = Builtin(name, task, description, generate)
        return generate

    return wrap


def numeric_splits(
    seed: int, sizes: dict[str, int], draw: Callable[[np.random.Generator], tuple]
) -> dict[str, list]:
    """``sizes[split]`` examples per split from ``draw(rng)``, one child stream per split.

    Separate streams mean valid and test never replay the draws of train.
    """
    streams = np.random.SeedSequence(seed).spawn(len(sizes))
    return {
        name: [draw(rng) for _ in range(size)]
        for (name, size), rng in zip(
            sizes.items(), map(np.random.default_rng, streams), strict=True
        )
    }


def load_builtin(name: str, seed: int = 0) -> RawData:
    """Generate builtin dataset ``name``; the same seed always gives the same data."""
    builtin_task(name)
    raw = BUILTINS[name].generate(seed)
    raw.source = f"builtin:{name}"
    return raw


def builtin_task(name: str) -> str:
    """The task of builtin dataset ``name``, without generating it.

    Raises:
        EdgeRNNError: there is no builtin dataset of that name.
    """
    _import_generators()
    if name not in BUILTINS:
        known = ", ".join(sorted(BUILTINS))
        raise EdgeRNNError(f"unknown builtin dataset {name!r}; choose one of {known}")
    return BUILTINS[name].task


def _import_generators() -> None:
    # Importing the modules fills BUILTINS through @register.
    from edgernn.data.builtin import (  # noqa: F401
        charlm,
        forecast,
        ner,
        sentiment,
        seqsum,
        translate,
    )
