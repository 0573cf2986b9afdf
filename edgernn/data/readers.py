"""Readers for every file format in DESIGN.md, each returning a list of raw examples.

The raw shapes per task are documented in ``edgernn.data.raw``. Every reader raises
``EdgeRNNError`` naming the file and line for input it cannot use.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgernn.errors import EdgeRNNError

Reader = Callable[[Path, str], list]

# (task, file suffix) -> reader; a directory's train.*/valid.*/test.* use the same table.
READERS: dict[tuple[str, str], Reader] = {}


def reader(task: str, *suffixes: str):
    def wrap(fn: Reader) -> Reader:
        for suffix in suffixes:
            READERS[(task, suffix)] = fn
        return fn

    return wrap


def read_file(path: Path, task: str) -> list:
    """Read one split file with the reader its task and suffix select."""
    fn = READERS.get((task, path.suffix.lower()))
    if fn is None:
        allowed = sorted(suffix for t, suffix in READERS if t == task)
        raise EdgeRNNError(
            f"{path}: a {task} dataset cannot be read from {path.suffix or 'a suffix-less'} "
            f"files; use one of {', '.join(allowed)}"
        )
    if not path.is_file():
        raise EdgeRNNError(f"{path}: no such file")
    examples = fn(path, task)
    if not examples:
        raise EdgeRNNError(f"{path}: the file holds no examples")
    return examples


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise EdgeRNNError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None


@reader("classify", ".csv", ".tsv")
def read_table(path: Path, task: str) -> list[tuple[str, str]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows = csv.reader(_read_text(path).splitlines(), delimiter=delimiter)
    header = [cell.strip().lower() for cell in next(rows, [])]
    if "text" not in header or "label" not in header:
        raise EdgeRNNError(f"{path}: expected a header with columns text,label; got {header}")
    text_at, label_at = header.index("text"), header.index("label")
    examples = []
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise EdgeRNNError(f"{path}:{line}: expected {len(header)} columns, got {len(row)}")
        examples.append(_text_label(row[text_at], row[label_at], f"{path}:{line}"))
    return examples


@reader("classify", ".jsonl")
def read_jsonl(path: Path, task: str) -> list[tuple[str, str]]:
    examples = []
    for line, content in enumerate(_read_text(path).splitlines(), start=1):
        if not content.strip():
            continue
        try:
            record = json.loads(content)
        except json.JSONDecodeError as error:
            raise EdgeRNNError(f"{path}:{line}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict) or "text" not in record or "label" not in record:
            raise EdgeRNNError(f'{path}:{line}: expected an object with "text" and "label"')
        examples.append(_text_label(record["text"], record["label"], f"{path}:{line}"))
    return examples


def _text_label(text: object, label: object, where: str) -> tuple[str, str]:
    if not isinstance(text, str) or not text.strip():
        raise EdgeRNNError(f"{where}: the text is empty or not a string")
    label = str(label).strip()
    if not label:
        raise EdgeRNNError(f"{where}: the label is empty")
    return text, label


@reader("tag", ".conll", ".txt", ".tsv", ".bio")
def read_conll(path: Path, task: str) -> list[tuple[list[str], list[str]]]:
    sentences, tokens, tags = [], [], []
    for line, content in enumerate(_read_text(path).splitlines(), start=1):
        cells = content.split()
        if not cells or content.startswith("-DOCSTART-"):
            if tokens:
                sentences.append((tokens, tags))
            tokens, tags = [], []
            continue
        if len(cells) < 2:
            raise EdgeRNNError(f"{path}:{line}: expected 'token tag', got {content!r}")
        tokens.append(cells[0])
        tags.append(cells[-1])
    if tokens:
        sentences.append((tokens, tags))
    return sentences


@reader("lm", ".txt")
def read_plain_text(path: Path, task: str) -> list[str]:
    text = _read_text(path)
    return [text] if text.strip() else []


@reader("seq2seq", ".tsv")
def read_pairs(path: Path, task: str) -> list[tuple[str, str]]:
    pairs = []
    for line, content in enumerate(_read_text(path).splitlines(), start=1):
        if not content.strip():
            continue
        cells = content.split("\t")
        if len(cells) != 2 or not cells[0].strip() or not cells[1].strip():
            raise EdgeRNNError(f"{path}:{line}: expected 'source<TAB>target', got {content!r}")
        pairs.append((cells[0].strip(), cells[1].strip()))
    return pairs


@reader("classify", ".npz")
@reader("regress", ".npz")
def read_npz(path: Path, task: str) -> list[tuple[np.ndarray, object]]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (ValueError, OSError) as error:
        raise EdgeRNNError(f"{path}: not a readable .npz archive ({error})") from None
    missing = {"x", "lengths", "y"} - set(arrays)
    if missing:
        raise EdgeRNNError(f"{path}: missing arrays {sorted(missing)}; need x, lengths and y")
    x, lengths, y = arrays["x"], arrays["lengths"], arrays["y"]
    _check_numeric(path, x, lengths, y)
    targets = _classify_targets(path, y) if task == "classify" else _regress_targets(path, y)
    return [(x[i, : lengths[i]].astype(np.float32), targets[i]) for i in range(len(lengths))]


def _check_numeric(path: Path, x: np.ndarray, lengths: np.ndarray, y: np.ndarray) -> None:
    if x.ndim != 3 or not np.issubdtype(x.dtype, np.floating):
        raise EdgeRNNError(f"{path}: x must be float (N, T, F), got {x.dtype} {x.shape}")
    if lengths.shape != (x.shape[0],) or not np.issubdtype(lengths.dtype, np.integer):
        raise EdgeRNNError(f"{path}: lengths must be integer (N,) = ({x.shape[0]},)")
    if len(y) != x.shape[0]:
        raise EdgeRNNError(f"{path}: y has {len(y)} rows but x has {x.shape[0]}")
    if lengths.size and (lengths.min() < 1 or lengths.max() > x.shape[1]):
        raise EdgeRNNError(f"{path}: every length must be between 1 and T={x.shape[1]}")
    if not np.isfinite(x).all():
        raise EdgeRNNError(f"{path}: x holds NaN or infinite values")


def _classify_targets(path: Path, y: np.ndarray) -> list[str]:
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.dtype.kind in "US"):
        raise EdgeRNNError(f"{path}: classification y must be integer or string labels (N,)")
    return [str(label) for label in y.tolist()]


def _regress_targets(path: Path, y: np.ndarray) -> list[np.ndarray]:
    if y.ndim not in (1, 2) or not np.issubdtype(y.dtype, np.floating):
        raise EdgeRNNError(f"{path}: regression y must be float (N,) or (N, K), got {y.dtype}")
    if not np.isfinite(y).all():
        raise EdgeRNNError(f"{path}: y holds NaN or infinite values")
    return list(y.reshape(len(y), -1).astype(np.float32))
