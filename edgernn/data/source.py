"""Resolve a DATA argument (``builtin:NAME``, a file or a split directory) into raw splits."""

from __future__ import annotations

import random
import stat
from pathlib import Path

from edgernn.data.builtin import BUILTINS, load_builtin
from edgernn.data.raw import SPLITS, RawData
from edgernn.data.readers import read_file
from edgernn.errors import EdgeRNNError

CARVE_SEED = 1234  # fixed, so every run (and every training seed) sees the same splits
CARVE_FRACTION = 0.1  # of train, for each missing split


def load_raw(data: str, task: str) -> RawData:
    """Read ``data`` for ``task`` and carve any missing valid/test split from train.

    Args:
        data: ``builtin:NAME``, a data file, or a directory with ``train.*`` and optionally
            ``valid.*`` and ``test.*``.
        task: the task the data must suit.

    Returns:
        RawData with all three splits.

    Example::

        raw = load_raw("builtin:sentiment", "classify")
    """
    if data.startswith("builtin:"):
        raw = _builtin(data.removeprefix("builtin:"), task)
    else:
        raw = _from_path(Path(data), task)
    return carve_missing_splits(raw)


def _builtin(name: str, task: str) -> RawData:
    raw = load_builtin(name)
    if BUILTINS[name].task != task:
        raise EdgeRNNError(
            f"builtin:{name} is a {BUILTINS[name].task} dataset; use --task "
            f"{BUILTINS[name].task} or another dataset"
        )
    return raw


def _kind(path: Path) -> str:
    # What a path that is neither a file nor a directory is; never opened (a FIFO would block).
    mode = path.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def _from_path(path: Path, task: str) -> RawData:
    if not path.exists():
        raise EdgeRNNError(f"{path}: no such file or directory")
    if path.is_file():
        return RawData(task=task, train=read_file(path, task), source=str(path))
    if not path.is_dir():
        raise EdgeRNNError(
            f"{path}: {_kind(path)}, not a data file or directory; copy it to a file"
        )
    if (path / "shards.json").is_file():  # train, compress and evaluate read those themselves
        raise EdgeRNNError(
            f"{path}: a shards folder (edgernn prepare); this command reads the source data, "
            "pass that instead"
        )
    splits = {name: _split_file(path, name) for name in SPLITS}
    if splits["train"] is None:
        raise EdgeRNNError(f"{path}: a data directory needs a train.* file")
    read = {name: read_file(file, task) if file else None for name, file in splits.items()}
    return RawData(task=task, source=str(path), **read)


def _split_file(directory: Path, name: str) -> Path | None:
    candidates = sorted(p for p in directory.glob(f"{name}.*") if p.is_file())
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise EdgeRNNError(f"{directory}: several {name} files ({names}); keep one")
    return candidates[0] if candidates else None


def carve_missing_splits(raw: RawData) -> RawData:
    """Move a seeded, deterministic share of train into each missing split."""
    missing = [name for name in ("valid", "test") if raw.split(name) is None]
    if not missing:
        return raw
    if raw.task == "lm":
        return _carve_text(raw, missing)
    train = list(raw.train)
    share = max(1, round(len(train) * CARVE_FRACTION))
    if len(train) < share * len(missing) + 1:
        raise EdgeRNNError(
            f"{raw.source}: only {len(train)} examples, too few to carve {' and '.join(missing)} "
            "splits; provide more data or the splits themselves"
        )
    random.Random(CARVE_SEED).shuffle(train)
    for name in missing:
        setattr(raw, name, train[:share])
        train = train[share:]
    raw.train = train
    return raw


def _carve_text(raw: RawData, missing: list[str]) -> RawData:
    # Language-model text is cut into contiguous tail pieces: shuffling characters or
    # windows would leak the same passages into train and test.
    text = "\n".join(raw.train)
    share = int(len(text) * CARVE_FRACTION)
    if share < 2:
        raise EdgeRNNError(f"{raw.source}: too little text to carve {' and '.join(missing)}")
    for name in missing:
        setattr(raw, name, [text[-share:]])
        text = text[:-share]
    raw.train = [text]
    return raw
