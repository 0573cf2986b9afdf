"""``edgernn prepare``: encode a dataset once into a shards folder, streaming where it can.

Line-oriented text files (classify ``.jsonl``/``.csv``/``.tsv``, tag CoNLL, seq2seq ``.tsv``)
are never held in memory: ``fit_meta`` itself fits the vocabulary and labels, reading the
training file as it goes (once for each), then one more pass encodes every example with
``Codec.encode`` and appends it to the stores. Other data (``builtin:``, ``.npz``, language-model
``.txt``, which is one document) is loaded and encoded in memory as ``train`` would, then
written. Either way the examples are exactly those ``load_raw`` + ``fit_meta`` + ``encode``
give, in the same order, carved splits included.
"""

from __future__ import annotations

import array
import csv
import itertools
import json
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgernn.atomic import check_folder_path, disk_errors, make_folder
from edgernn.config import ModelSpec
from edgernn.data.prepare import LM_WINDOW, Codec, encode, fit_meta
from edgernn.data.raw import SPLITS, RawData
from edgernn.data.readers import conll_sentences, jsonl_examples, pair_examples, table_examples
from edgernn.data.shards.split import FORMAT, MANIFEST, VERSION, is_shards
from edgernn.data.shards.store import StoreWriter
from edgernn.data.source import CARVE_FRACTION, CARVE_SEED, _split_file, load_raw
from edgernn.errors import EdgeRNNError

# (task, suffix) of the files read line by line; everything else is loaded in memory.
STREAMED = {
    ("classify", ".jsonl"),
    ("classify", ".csv"),
    ("classify", ".tsv"),
    *(("tag", suffix) for suffix in (".conll", ".txt", ".tsv", ".bio")),
    ("seq2seq", ".tsv"),
}


def prepare_shards(
    data: str | os.PathLike,
    task: str,
    output: str | os.PathLike,
    tokens: str | None = None,
    text: dict | None = None,
    max_len: int = ModelSpec.max_len,
) -> dict:
    """Encode ``data`` into the shards folder ``output`` (replaced atomically).

    Args:
        data: a DATA argument, as ``train`` takes it.
        task: the task the data is for.
        output: the folder to write; a new, empty or earlier shards folder.
        tokens, text: tokenization choices, as ``train`` takes them.
        max_len: the longest example allowed (also caps language-model windows).

    Returns:
        The ``shards.json`` written.

    Example::

        prepare_shards("data/", "classify", "shards/")
        # then: edgernn train --task classify --data shards/ ...
    """
    data, output = os.fspath(data), Path(output)
    _check_output(output, data)
    files = streamed_files(data, task)
    with _temporary_folder(output) as folder:
        if files is None:
            meta, stores, splits = _write_in_memory(data, task, folder, tokens, text, max_len)
        else:
            choices = (tokens, text)
            meta, stores, splits = _write_streamed(data, files, task, folder, choices, max_len)
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "task": task,
            "streamed": files is not None,
            "meta": meta.to_dict(),
            "stores": stores,
            "splits": splits,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return manifest


def streamed_files(data: str, task: str) -> dict[str, Path | None] | None:
    """The split files ``data`` names when all of them can be streamed, else None."""
    if data.startswith("builtin:"):
        return None
    path = Path(data)
    if path.is_file():
        files = {"train": path, "valid": None, "test": None}
    elif path.is_dir():
        files = {name: _split_file(path, name) for name in SPLITS}
    else:
        return None
    present = [f for f in files.values() if f is not None]
    if files["train"] is None or any((task, f.suffix.lower()) not in STREAMED for f in present):
        return None
    return files


def _write_in_memory(data, task, folder, tokens, text, max_len):
    raw = load_raw(data, task)
    meta = fit_meta(raw, tokens, text)
    encoded = encode(raw, meta, max_len, min(LM_WINDOW, max_len))
    stores, features = {}, meta.input_size if meta.norm is not None else None
    for name in SPLITS:
        writer = StoreWriter(folder, name, task, features)
        for inputs, target in encoded.splits[name]:
            writer.add(inputs, target)
        stores[name] = writer.close()
    splits = {name: {"store": name, "count": stores[name]["count"]} for name in SPLITS}
    return meta, stores, splits


def _write_streamed(data, files, task, folder, choices, max_len):
    for path in filter(None, files.values()):
        if next(iter(_Examples(path, task)), None) is None:
            raise EdgeRNNError(f"{path}: the file holds no examples")
    missing = [name for name in ("valid", "test") if files[name] is None]
    rows = _carve(files["train"], task, missing, data) if missing else {}
    train = _Examples(files["train"], task, rows.get("train"))
    meta = fit_meta(RawData(task=task, train=train, source=data), *choices)
    codec, stores, splits = Codec(meta), {}, {}
    for name, path in files.items():
        if path is not None:
            membership = _membership(rows) if name == "train" and rows else None
            stores[name] = _encode_file(folder, name, path, codec, membership, max_len)
            splits[name] = {"store": name, "count": stores[name]["count"]}
    for name, selected in rows.items():
        np.save(folder / f"{name}.rows.npy", selected)
        splits[name] = {"store": "train", "rows": True, "count": len(selected)}
    return meta, stores, splits


def _encode_file(folder, name, path, codec, membership, max_len) -> dict:
    writer = StoreWriter(folder, name, codec.meta.task, None)
    for row, example in enumerate(_Examples(path, codec.meta.task)):
        split = name if membership is None else SPLITS[membership[row]]
        try:
            inputs, target = codec.encode(example, split)
        except EdgeRNNError as error:
            raise EdgeRNNError(f"{path}: {error}") from None
        if len(inputs) > max_len:
            raise EdgeRNNError(
                f"{path}: {split} example {str(example[0])[:30]!r}... has {len(inputs)} steps, "
                f"more than the max length {max_len}; raise --max-len or shorten the input"
            )
        writer.add(inputs, target)
    return writer.close()


def _carve(path: Path, task: str, missing: list[str], source: str) -> dict[str, np.ndarray]:
    """The rows of the training file each split gets, as ``carve_missing_splits`` picks them.

    Shuffling row numbers with the same seeded ``random.shuffle`` gives the permutation it
    applies to the examples themselves (a shuffle depends on the length alone).
    """
    count = sum(1 for _ in _Examples(path, task))
    share = max(1, round(count * CARVE_FRACTION))
    if count < share * len(missing) + 1:
        raise EdgeRNNError(
            f"{source}: only {count} examples, too few to carve {' and '.join(missing)} "
            "splits; provide more data or the splits themselves"
        )
    order = array.array("q", range(count))  # 8 bytes a row, not a list of Python ints
    random.Random(CARVE_SEED).shuffle(order)
    rest, rows = np.frombuffer(order, dtype=np.int64), {}
    for name in missing:
        rows[name], rest = rest[:share], rest[share:]
    return rows | {"train": rest}


def _membership(rows: dict[str, np.ndarray]) -> np.ndarray:
    """Each training-file row's split, as an index into ``SPLITS``."""
    membership = np.zeros(sum(len(r) for r in rows.values()), dtype=np.int8)
    for name, selected in rows.items():
        membership[selected] = SPLITS.index(name)
    return membership


class _Examples:
    """The raw examples of one split file, read again on every pass (never all in memory).

    ``keep``: the file's rows that belong to this split (None: all). Indexing reads up to
    the example asked for; ``fit_meta`` only peeks at the first.
    """

    def __init__(self, path: Path, task: str, keep: np.ndarray | None = None):
        self.path, self.task = path, task
        self.keep = None
        if keep is not None:
            self.keep = np.zeros(int(keep.max()) + 1, dtype=bool)
            self.keep[keep] = True

    def __iter__(self) -> Iterator:
        examples = _read(self.path, self.task)
        if self.keep is None:
            yield from examples
            return
        for row, example in enumerate(examples):
            if row < len(self.keep) and self.keep[row]:
                yield example

    def __getitem__(self, index: int):
        example = next(itertools.islice(iter(self), index, None), None)
        if example is None:
            raise IndexError(index)
        return example


def _read(path: Path, task: str) -> Iterator:
    # newline="": only \n, \r\n and \r end a line, as the in-memory readers decide;
    # utf-8-sig drops a leading byte-order mark, as they do.
    with open(path, encoding="utf-8-sig", newline="") as file:
        try:
            if task == "classify" and path.suffix.lower() in (".csv", ".tsv"):
                delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
                yield from table_examples(path, csv.reader(file, delimiter=delimiter))
                return
            lines = ((n, line.rstrip("\r\n")) for n, line in enumerate(file, start=1))
            parse = {"classify": jsonl_examples, "tag": conll_sentences, "seq2seq": pair_examples}
            yield from parse[task](path, lines)
        except UnicodeDecodeError as error:
            raise EdgeRNNError(
                f"{path}: not UTF-8 text ({error.reason}); save the file as UTF-8"
            ) from None


def _check_output(output: Path, data: str) -> None:
    check_folder_path(output)
    if is_shards(data):
        raise EdgeRNNError(f"{data}: already a shards folder; pass it to --data directly")
    if output.is_dir() and any(output.iterdir()) and not (output / MANIFEST).is_file():
        raise EdgeRNNError(
            f"{output}: a folder holding other files; choose a new or empty folder for the shards"
        )


@contextmanager
def _temporary_folder(output: Path) -> Iterator[Path]:
    """A folder beside ``output`` renamed onto it when the block succeeds: a killed prepare
    leaves no folder with a ``shards.json`` that is not complete."""
    make_folder(output.parent)
    temp = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp"))
    try:
        with disk_errors(output):
            umask = os.umask(0)
            os.umask(umask)
            temp.chmod(0o777 & ~umask)  # mkdtemp makes it private; shards are shared data
            yield temp
            _replace(temp, output)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _replace(temp: Path, output: Path) -> None:
    if not output.exists():
        temp.rename(output)
        return
    old = temp.with_suffix(".old")
    output.rename(old)  # an earlier shards folder (or an empty one): _check_output said so
    temp.rename(output)
    shutil.rmtree(old, ignore_errors=True)
