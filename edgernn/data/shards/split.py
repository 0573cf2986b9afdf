"""Read a shards folder: ``shards.json`` plus its stores, as a ``TaskData``.

``shards.json`` records the format version, the task, the ``DataMeta`` every example was
encoded with, each store's size and each split: the store it reads and, for a split carved
from another file's examples, a ``SPLIT.rows.npy`` index into that store (in the carved
order, so a split lists its examples in the order ``load_raw`` gives them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from edgernn.data.meta import DataMeta
from edgernn.data.prepare import TaskData
from edgernn.data.raw import SPLITS
from edgernn.data.shards.store import PREPARE_AGAIN, Store, load_array
from edgernn.data.vocab import UNK_ID
from edgernn.errors import EdgeRNNError

MANIFEST = "shards.json"
FORMAT = "edgernn.shards"
VERSION = 1


def is_shards(data: str | None) -> bool:
    """Whether a DATA argument names a folder ``edgernn prepare`` wrote."""
    if data is None or data.startswith("builtin:"):
        return False
    return (Path(data) / MANIFEST).is_file()


class ShardSplit(Sequence):
    """One split of a shards folder: a sequence of ``(inputs, target)`` tensor pairs read
    from disk on demand, like the list ``encode`` makes but never all in memory.

    ``lengths`` (every example's input length) comes from the offsets alone, so batching
    orders the split without reading its examples. A slice is a list of pairs.
    """

    def __init__(self, store: Store, rows: np.ndarray | None = None, remap=None):
        self.store, self.rows = store, rows
        lengths = store.lengths
        self.lengths = lengths if rows is None else lengths[rows]
        self.remap = remap  # input ids -> another vocabulary's ids (``for_model``)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"example {index} of a split of {len(self)}")
        index %= len(self)
        inputs, target = self.store.example(index if self.rows is None else int(self.rows[index]))
        return (inputs if self.remap is None else self.remap[inputs]), target

    @property
    def longest(self) -> int:
        return int(self.lengths.max())


def load_shards(folder: str | Path) -> TaskData:
    """Open a shards folder; its meta records the folder as its source.

    Raises:
        EdgeRNNError: ``shards.json`` or a store is missing, damaged or of another version.

    Example::

        data = load_shards("shards/")
        inputs, target = data.splits["train"][0]
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    meta = replace(_meta(folder, manifest), source=str(folder))
    limits = _limits(meta)
    stores = {name: Store(folder, name, meta.task, limits) for name in manifest["stores"]}
    splits = {}
    for name in SPLITS:
        entry = manifest["splits"][name]
        store = stores.get(entry.get("store")) if isinstance(entry, dict) else None
        if store is None:
            raise EdgeRNNError(f"{folder / MANIFEST}: split {name} names no store; {PREPARE_AGAIN}")
        rows = _rows(folder / f"{name}.rows.npy", len(store)) if entry.get("rows") else None
        splits[name] = ShardSplit(store, rows)
        if len(splits[name]) != entry.get("count"):
            raise EdgeRNNError(f"{folder}: the {name} split is not the size {MANIFEST} records")
    _check_features(folder, meta, stores)
    return TaskData(meta, splits)


def load_for_training(
    folder: str | Path, task: str, tokens: str | None = None, text: dict | None = None
) -> TaskData:
    """``load_shards`` for a new model of ``task``: its tokenization was fixed by prepare.

    Raises:
        EdgeRNNError: the shards are of another task, or tokenization choices were given.
    """
    data = load_shards(folder)
    if data.meta.task != task:
        raise EdgeRNNError(
            f"{folder}: shards of a {data.meta.task} dataset; use --task {data.meta.task} or "
            "prepare the data for this task"
        )
    chosen = [name for name, value in (text or {}).items() if value is not None]
    if tokens is not None or chosen:
        raise EdgeRNNError(
            f"{folder}: the tokenization was fixed when the shards were prepared; pass "
            "--tokens and the text options to edgernn prepare instead"
        )
    return data


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdgeRNNError(f"{folder}: no {MANIFEST}; write it with edgernn prepare") from None
    except (OSError, ValueError) as error:
        raise EdgeRNNError(f"{path}: not readable JSON ({error}); {PREPARE_AGAIN}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise EdgeRNNError(f"{path}: not an edgernn shards manifest; {PREPARE_AGAIN}")
    if manifest.get("version") != VERSION:
        raise EdgeRNNError(
            f"{path}: shards format version {manifest.get('version')!r}, this edgernn reads "
            f"{VERSION}; {PREPARE_AGAIN}"
        )
    stores, splits = manifest.get("stores"), manifest.get("splits")
    if not isinstance(stores, dict) or not set(stores) <= set(SPLITS):
        raise EdgeRNNError(f"{path}: damaged store list; {PREPARE_AGAIN}")
    if not isinstance(splits, dict) or set(splits) != set(SPLITS):
        raise EdgeRNNError(f"{path}: must list the splits {', '.join(SPLITS)}; {PREPARE_AGAIN}")
    return manifest


def _meta(folder: Path, manifest: dict) -> DataMeta:
    values = manifest.get("meta")
    try:
        meta = DataMeta.from_dict(values)
        meta.text_rules()  # refuses damaged text rules
    except (TypeError, AttributeError, EdgeRNNError) as error:
        where = folder / MANIFEST
        raise EdgeRNNError(f"{where}: damaged meta ({error}); {PREPARE_AGAIN}") from None
    if meta.task != manifest.get("task"):
        raise EdgeRNNError(f"{folder / MANIFEST}: damaged task; {PREPARE_AGAIN}")
    return meta


def _limits(meta: DataMeta) -> dict[str, int]:
    # The largest id + 1 each side may hold; floats (numeric inputs, regression) are not ids.
    targets = {"lm": meta.vocab, "seq2seq": meta.tgt_vocab}.get(meta.task, meta.labels)
    return {"inputs": len(meta.vocab or []), "targets": len(targets or [])}


def _rows(path: Path, size: int) -> np.ndarray:
    rows = load_array(path, (np.int64,), (1,))
    if len(rows) == 0 or rows.min() < 0 or rows.max() >= size:
        raise EdgeRNNError(f"{path}: rows outside the store of {size}; {PREPARE_AGAIN}")
    return rows


def _check_features(folder: Path, meta: DataMeta, stores: dict[str, Store]) -> None:
    for store in stores.values():
        numeric = store.inputs.dtype == np.float32
        width = store.inputs.shape[1] if numeric else 0
        if numeric != (meta.norm is not None) or width != (meta.input_size if numeric else 0):
            raise EdgeRNNError(
                f"{store.name}: inputs do not match the recorded meta; {PREPARE_AGAIN}"
            )


def for_model(data: TaskData, meta: DataMeta, max_len: int) -> TaskData:
    """``data`` as a model with ``meta`` and ``max_len`` reads it.

    A model whose vocabulary is another one over the same tokenization (a student that kept
    the most frequent tokens) gets the shards' ids mapped to its own: token by token, a token
    it lacks becoming ``<unk>``, exactly as encoding the source text with its vocabulary.

    Raises:
        EdgeRNNError: the shards' ids mean other labels, scaling or tokens than the model's,
            or an example is too long.
    """
    fields = ("task", "tokens", "tgt_vocab", "labels", "norm", "input_size", "text")
    differ = [f for f in fields if getattr(data.meta, f) != getattr(meta, f)]
    # Exact only for a vocabulary within the shards' own: a token the shards read as <unk>
    # (unseen in their train split) may be one the model knows.
    if differ or not set(meta.vocab or []) <= set(data.meta.vocab or []):
        raise EdgeRNNError(
            f"{data.meta.source}: the shards were encoded with another "
            f"{', '.join(differ) or 'vocab'} than the model's; score the model on the source "
            "data (or shards prepared from the data the model was trained on)"
        )
    check_length(data, max_len)
    if data.meta.vocab == meta.vocab:
        return data
    own = {token: i for i, token in enumerate(meta.vocab)}
    remap = torch.tensor([own.get(token, UNK_ID) for token in data.meta.vocab])
    splits = {
        name: ShardSplit(split.store, split.rows, remap) for name, split in data.splits.items()
    }
    return TaskData(replace(data.meta, vocab=meta.vocab), splits)


def check_length(data: TaskData, max_len: int) -> None:
    """Refuse shards holding an example longer than a model's ``max_len``."""
    for name, split in data.splits.items():
        if split.longest > max_len:
            raise EdgeRNNError(
                f"{data.meta.source}: the {name} split has an example of {split.longest} steps, "
                f"more than the model's max length {max_len}; raise --max-len or prepare "
                "shorter inputs"
            )
