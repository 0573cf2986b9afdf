"""Safe checkpoints: plain tensors and built-in types only, loadable with ``weights_only=True``.

``checkpoint_data`` is the one way to get "the data of this checkpoint", encoded as the model
was trained (``evaluate``, ``compress``, ``export`` and ``bench`` all use it).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from edgernn import __version__
from edgernn.atomic import atomic_path, make_folder
from edgernn.config import ModelSpec
from edgernn.data import TaskData, encode, load_raw, shards
from edgernn.data.builtin import builtin_task
from edgernn.data.meta import DataMeta
from edgernn.errors import EdgeRNNError
from edgernn.formats import check_format

FORMAT = "edgernn.checkpoint"
# Bump on incompatible changes; loaders refuse newer versions. 2: data.text holds the text
# rules, which an older edgernn would drop and tokenize by str.split() without a word.
VERSION = 2


@dataclass
class Checkpoint:
    spec: ModelSpec
    meta: DataMeta
    state_dict: dict[str, torch.Tensor]
    metrics: dict = field(default_factory=dict)  # {"valid": {...}, "test": {...}}
    training: dict = field(default_factory=dict)  # the TrainConfig used, for the record
    # How the model was compressed (stages, int8 quantization plan); empty for a trained model.
    compression: dict = field(default_factory=dict)

    def build(self) -> nn.Module:
        """Rebuild the model with its trained weights, in eval mode."""
        from edgernn.models import build_model

        model = build_model(self.spec)
        model.load_state_dict(self.state_dict)
        return model.eval()


def save_checkpoint(checkpoint: Checkpoint, path: str | os.PathLike) -> Path:
    """Write atomically: a crash never leaves a half-written file under ``path``."""
    path = Path(path)
    make_folder(path.parent)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "edgernn_version": __version__,
        "task": checkpoint.spec.task,
        "spec": checkpoint.spec.to_dict(),
        "data": checkpoint.meta.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in checkpoint.state_dict.items()},
        "metrics": checkpoint.metrics,
        "training": checkpoint.training,
        "compression": checkpoint.compression,
    }
    # Through a Python file, not a path: torch's own writer reports a full disk as a bare
    # RuntimeError, while a Python write raises OSError(ENOSPC), which atomic_path explains.
    with atomic_path(path) as temp, open(temp, "wb") as out:
        torch.save(payload, out)
        out.flush()
        os.fsync(out.fileno())
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load an edgernn checkpoint without running any pickled code.

    Raises:
        EdgeRNNError: the file is missing, corrupt, not an edgernn checkpoint, or from a
            newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgeRNNError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise EdgeRNNError(
            f"{path}: holds pickled code, not an edgernn checkpoint; loading it would run that "
            "code, which edgernn only does for a model you trust with --trust-pickle"
        ) from None
    except Exception as error:  # a damaged file fails in many ways deep inside torch.load
        raise EdgeRNNError(f"{path}: corrupt or not a PyTorch file ({error})") from None
    return _from_payload(payload, path)


def _from_payload(payload: object, path: Path) -> Checkpoint:
    check_format(payload, FORMAT, VERSION, path, "checkpoint")
    try:
        for name in ("spec", "data", "state_dict"):
            if not isinstance(payload[name], dict):
                raise EdgeRNNError(f"{name} must be a dict, got {type(payload[name]).__name__}")
        spec = ModelSpec.from_dict(payload["spec"])
        meta = DataMeta.from_dict(payload["data"])
        meta.check_fits(spec)
        check_state_dict(payload["state_dict"], spec)
        return Checkpoint(
            spec=spec,
            meta=meta,
            state_dict=payload["state_dict"],
            metrics=payload.get("metrics", {}),
            training=payload.get("training", {}),
            compression=payload.get("compression", {}),
        )
    except KeyError as error:
        raise EdgeRNNError(f"{path}: checkpoint is missing a field ({error})") from None
    except (EdgeRNNError, TypeError) as error:  # TypeError: a field of the wrong kind
        raise EdgeRNNError(f"{path}: damaged checkpoint: {error}") from None


def check_state_dict(state: dict, spec: ModelSpec) -> None:
    """Refuse weights that are not exactly the tensors of the model ``spec`` describes.

    The expected names and shapes come from the model built on the meta device, so nothing
    is allocated (``ModelSpec`` has already capped its size).
    """
    from edgernn.models import build_model

    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in build_model(spec).state_dict().items()}
    missing = sorted(set(expected) - set(state))
    extra = sorted(map(str, set(state) - set(expected)))
    if missing or extra:
        raise EdgeRNNError(
            f"weights do not fit the model spec: missing {missing[:3]}, unexpected {extra[:3]}"
        )
    for name, shape in expected.items():
        value = state[name]
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise EdgeRNNError(f"weight {name} must be a float tensor, got {type(value).__name__}")
        if tuple(value.shape) != shape:
            raise EdgeRNNError(
                f"weight {name} has shape {list(value.shape)}, the model spec needs {list(shape)}"
            )


def check_finite(state: dict[str, torch.Tensor]) -> None:
    """Refuse NaN or infinite weights: they export to graphs whose every output is NaN."""
    for name, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise EdgeRNNError(
                f"weight {name} holds NaN or infinite values; the model diverged in training "
                "(retrain with a lower --lr) or the file is damaged"
            )


def checkpoint_data(checkpoint: Checkpoint, data: str | None = None) -> tuple[TaskData | None, str]:
    """The data to score or train ``checkpoint`` on, encoded with its own vocabulary, labels,
    normalization and length limit.

    One policy for every command:

    - ``data`` given (``--data``): the user asked for it, so it must load and be data of the
      model's task; otherwise ``EdgeRNNError``.
    - ``data`` None: the data recorded in the checkpoint. When none is recorded, or it no
      longer loads (a moved file, a changed dataset), there is no data and the note says why;
      the caller decides whether it can go on without (``compress`` and ``export`` do, with the
      note in their report; ``evaluate`` cannot and raises it).

    Args:
        checkpoint: a trained or compressed edgernn checkpoint.
        data: a DATA argument (``builtin:NAME``, a file or a split directory).

    Returns:
        ``(encoded, note)``: ``encoded`` is None when there is no data; ``note`` names the data
        used (``"data: builtin:sentiment"``) or says why there is none.

    Raises:
        EdgeRNNError: ``data`` was given and cannot be loaded, or is of another task.

    Example::

        encoded, note = checkpoint_data(load_checkpoint("teacher.pt"))
        examples = encoded.splits["test"] if encoded is not None else []
    """
    task = checkpoint.spec.task
    if data is None:
        recorded = checkpoint.meta.source
        if not recorded:
            return None, "the checkpoint records no data; pass --data"
        try:
            return _encode(checkpoint, recorded), f"data: {recorded}"
        except EdgeRNNError as error:
            return None, f"its recorded data cannot be loaded ({error}); pass --data"
    if data.startswith("builtin:"):
        other = builtin_task(data.removeprefix("builtin:"))
        if other != task:
            raise EdgeRNNError(
                f"{data} is a {other} dataset but the model is a {task} model; "
                f"pass data of task {task}"
            )
    return _encode(checkpoint, data), f"data: {data}"


def _encode(checkpoint: Checkpoint, data: str) -> TaskData:
    if shards.is_shards(data):  # encoded by ``edgernn prepare``, read with the model's meta
        return shards.for_model(shards.load_shards(data), checkpoint.meta, checkpoint.spec.max_len)
    raw = load_raw(data, checkpoint.spec.task)
    return encode(raw, checkpoint.meta, checkpoint.spec.max_len)
