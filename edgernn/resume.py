"""Resumable training: the state of ``fit`` after each finished epoch, in one file.

``edgernn train --resume`` continues a killed or pre-empted run from the last finished epoch
with everything that decides what comes next: weights, optimizer moments, the one-cycle
schedule, the batch order and dropout random streams, and the early-stopping record (best
score, best weights, epochs without improvement). A run resumed from it ends with exactly
the weights of an uninterrupted one (tested, bit for bit, on CPU).

The file sits beside the checkpoint (``teacher.pt`` -> ``teacher.pt.resume``), is written
atomically after every epoch, loads with ``torch.load(weights_only=True)`` (no pickled code)
and is removed when training ends. It records the settings it was made with; resuming with
other settings is refused, since the schedule and data order would no longer match.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch

from edgernn.atomic import write_atomic
from edgernn.errors import EdgeRNNError

FORMAT = "edgernn.train-state"
VERSION = 1
SUFFIX = ".resume"


def state_path(checkpoint: str | Path) -> Path:
    """Where the training state of the checkpoint ``checkpoint`` is kept."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.name + SUFFIX)


@dataclass
class Progress:
    """The early-stopping record: what the next epoch is compared with."""

    epoch: int = 0  # the last finished epoch
    best_score: float | None = None
    best_state: dict | None = None
    stale: int = 0  # epochs since the best one


def save_state(
    path: Path, fingerprint: dict, progress: Progress, parts: dict, generator: torch.Generator
) -> None:
    """Write the state after a finished epoch, atomically (a kill leaves the previous one).

    ``parts``: name -> object with ``state_dict()`` (model, optimizer, schedule, objective);
    ``generator``: the batch order's random stream.
    """
    state = {
        "format": FORMAT,
        "version": VERSION,
        "fingerprint": fingerprint,
        "progress": vars(progress),
        "parts": {name: part.state_dict() for name, part in parts.items()},
        "rng": _rng_state() | {"order": generator.get_state()},
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def load_state(path: Path, fingerprint: dict, parts: dict, generator: torch.Generator) -> Progress:
    """Restore ``parts`` and the random streams from ``path``; the early-stopping record.

    Raises:
        EdgeRNNError: not a training state, or made with other settings.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, foreign or damaged
        raise EdgeRNNError(f"{path}: not a readable training state ({error}); delete it") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise EdgeRNNError(f"{path}: not an edgernn training state; delete it or drop --resume")
    if state.get("version") != VERSION:
        raise EdgeRNNError(f"{path}: training state version {state.get('version')!r} unknown")
    changed = sorted(k for k in fingerprint if state["fingerprint"].get(k) != fingerprint[k])
    if changed:
        raise EdgeRNNError(
            f"{path} was saved by a training with other {', '.join(changed)}; resume with the "
            "same command, or delete it (or drop --resume) to start over"
        )
    for name, part in parts.items():
        part.load_state_dict(state["parts"][name])
    torch.set_rng_state(state["rng"]["cpu"])
    generator.set_state(state["rng"]["order"])
    if state["rng"]["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return Progress(**state["progress"])


def _rng_state() -> dict:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return {"cpu": torch.get_rng_state(), "cuda": cuda}
