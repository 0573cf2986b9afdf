"""Readers for every file format in DESIGN.md, each returning a list of raw examples.

The raw shapes per task are documented in ``edgernn.data.raw``. Every reader raises
``EdgeRNNError`` naming the file and line for input it cannot use.

Input rules every text reader shares: files are UTF-8 (a leading byte-order mark is
dropped); only LF, CRLF and CR end a line; a CSV/TSV cell holds at most 131072
characters (the ``csv`` module's limit); JSONL labels are strings, integers or
booleans; texts and labels are real Unicode (no unpaired surrogates). ``.npz`` files are
read by ``edgernn.npz`` (no pickles, size-checked before allocating); NaN, infinite or
beyond-float32 values inside a sequence's length are refused, padding past it is ignored.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from edgernn.errors import EdgeRNNError
from edgernn.npz import load_npz

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
    """The file as UTF-8 text, without a leading byte-order mark."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise EdgeRNNError(
            f"{path}:{line}: not UTF-8 text ({error.reason} at byte {error.start}); "
            "save the file as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


def _lines(path: Path) -> list[str]:
    # Only \n, \r\n and \r end a line. str.splitlines would also split on \x0c, \x1c,
    # \x85 and U+2028, which are legal inside text fields and JSON strings.
    return _read_text(path).replace("\r\n", "\n").replace("\r", "\n").split("\n")


@reader("classify", ".csv", ".tsv")
def read_table(path: Path, task: str) -> list[tuple[str, str]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows = csv.reader(io.StringIO(_read_text(path), newline=""), delimiter=delimiter)
    return list(table_examples(path, rows))


def table_examples(path: Path, rows) -> Iterator[tuple[str, str]]:
    """The examples of a ``csv.reader`` over a CSV/TSV file, one by one (also streamed)."""
    try:
        header = [cell.strip().lower() for cell in next(rows, [])]
        if "text" not in header or "label" not in header:
            raise EdgeRNNError(f"{path}: expected a header with columns text,label; got {header}")
        text_at, label_at = header.index("text"), header.index("label")
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path}:{rows.line_num}"
            if len(row) != len(header):
                raise EdgeRNNError(f"{where}: expected {len(header)} columns, got {len(row)}")
            yield _text_label(row[text_at], row[label_at], where)
    except csv.Error as error:
        raise EdgeRNNError(f"{path}:{rows.line_num}: not valid {path.suffix} ({error})") from None


@reader("classify", ".jsonl")
def read_jsonl(path: Path, task: str) -> list[tuple[str, str]]:
    return list(jsonl_examples(path, enumerate(_lines(path), start=1)))


def jsonl_examples(path: Path, lines: Iterable[tuple[int, str]]) -> Iterator[tuple[str, str]]:
    """The examples of numbered JSONL lines, one by one (also streamed)."""
    for line, content in lines:
        if not content.strip():
            continue
        where = f"{path}:{line}"
        try:
            record = json.loads(content)
        except json.JSONDecodeError as error:
            raise EdgeRNNError(f"{where}: not valid JSON ({error.msg})") from None
        except ValueError:  # Python refuses to convert integers of over 4300 digits
            raise EdgeRNNError(f"{where}: a number in the JSON is too long to read") from None
        except RecursionError:
            raise EdgeRNNError(f"{where}: JSON nested too deeply") from None
        if not isinstance(record, dict) or "text" not in record or "label" not in record:
            raise EdgeRNNError(f'{where}: expected an object with "text" and "label"')
        label = record["label"]
        if not isinstance(label, str | int):  # bool is an int: true/false labels are fine
            raise EdgeRNNError(
                f"{where}: the label must be a string, integer or boolean, not "
                f"{type(label).__name__}"
            )
        yield _text_label(record["text"], label, where)


def _text_label(text: object, label: object, where: str) -> tuple[str, str]:
    if not isinstance(text, str) or not text.strip():
        raise EdgeRNNError(f"{where}: the text is empty or not a string")
    return _unicode(text, where), _label(label, where)


def _label(label: object, where: str) -> str:
    label = str(label).strip()
    if not label:
        raise EdgeRNNError(f"{where}: the label is empty")
    return _unicode(label, where)


def _unicode(text: str, where: str) -> str:
    # JSON "\ud800" escapes and numpy "U" arrays can hold lone surrogates, which are not
    # characters: they cannot be written to a UTF-8 bundle manifest later.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise EdgeRNNError(
            f"{where}: {text[error.start]!r} is an unpaired surrogate, not a character; "
            "fix the \\u escape"
        ) from None
    return text


@reader("tag", ".conll", ".txt", ".tsv", ".bio")
def read_conll(path: Path, task: str) -> list[tuple[list[str], list[str]]]:
    return list(conll_sentences(path, enumerate(_lines(path), start=1)))


def conll_sentences(
    path: Path, lines: Iterable[tuple[int, str]]
) -> Iterator[tuple[list[str], list[str]]]:
    """The sentences of numbered CoNLL lines, one by one (also streamed)."""
    tokens, tags = [], []
    for line, content in lines:
        cells = content.split()
        if not cells or content.startswith("-DOCSTART-"):
            if tokens:
                yield tokens, tags
            tokens, tags = [], []
            continue
        if len(cells) < 2:
            raise EdgeRNNError(f"{path}:{line}: expected 'token tag', got {content!r}")
        tokens.append(cells[0])
        tags.append(cells[-1])
    if tokens:
        yield tokens, tags


@reader("lm", ".txt")
def read_plain_text(path: Path, task: str) -> list[str]:
    text = "\n".join(_lines(path))
    return [text] if text.strip() else []


@reader("seq2seq", ".tsv")
def read_pairs(path: Path, task: str) -> list[tuple[str, str]]:
    return list(pair_examples(path, enumerate(_lines(path), start=1)))


def pair_examples(path: Path, lines: Iterable[tuple[int, str]]) -> Iterator[tuple[str, str]]:
    """The pairs of numbered ``source<TAB>target`` lines, one by one (also streamed)."""
    for line, content in lines:
        if not content.strip():
            continue
        cells = content.split("\t")
        if len(cells) != 2 or not cells[0].strip() or not cells[1].strip():
            raise EdgeRNNError(f"{path}:{line}: expected 'source<TAB>target', got {content!r}")
        yield cells[0].strip(), cells[1].strip()


@reader("classify", ".npz")
@reader("regress", ".npz")
def read_npz(path: Path, task: str) -> list[tuple[np.ndarray, object]]:
    arrays = load_npz(path)
    x, lengths, y = arrays["x"], arrays["lengths"], arrays["y"]
    _check_shapes(path, x, lengths, y)
    targets = _classify_targets(path, y) if task == "classify" else _regress_targets(path, y)
    x = _finite_float32(path, "x", x, valid=np.arange(x.shape[1]) < lengths[:, None])
    return [(x[i, : lengths[i]], targets[i]) for i in range(len(lengths))]


def _check_shapes(path: Path, x: np.ndarray, lengths: np.ndarray, y: np.ndarray) -> None:
    if x.ndim != 3 or not np.issubdtype(x.dtype, np.floating) or x.shape[2] < 1:
        raise EdgeRNNError(
            f"{path}: x must be float (N, T, F) with F >= 1, got {x.dtype} {x.shape}"
        )
    if lengths.shape != (x.shape[0],) or not np.issubdtype(lengths.dtype, np.integer):
        raise EdgeRNNError(
            f"{path}: lengths must be integer (N,) = ({x.shape[0]},), got {lengths.dtype} "
            f"{lengths.shape}"
        )
    if y.ndim == 0:
        raise EdgeRNNError(f"{path}: y must hold one row per sequence, got a scalar")
    if len(y) != x.shape[0]:
        raise EdgeRNNError(f"{path}: y has {len(y)} rows but x has {x.shape[0]}")
    if lengths.size and (lengths.min() < 1 or lengths.max() > x.shape[1]):
        raise EdgeRNNError(f"{path}: every length must be between 1 and T={x.shape[1]}")


def _finite_float32(
    path: Path, name: str, values: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    # Checked after the cast: a finite float64 beyond float32's range becomes inf.
    # Padding past each length (outside ``valid``) may hold anything; it is never read.
    with np.errstate(over="ignore", invalid="ignore"):
        values = values.astype(np.float32)
    if not np.isfinite(values if valid is None else values[valid]).all():
        raise EdgeRNNError(
            f"{path}: {name} holds NaN, infinite or beyond-float32 values; clean or rescale it"
        )
    return values


def _classify_targets(path: Path, y: np.ndarray) -> list[str]:
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.dtype.kind in "US"):
        raise EdgeRNNError(f"{path}: classification y must be integer or string labels (N,)")
    labels = y.tolist()
    if y.dtype.kind == "S":
        try:
            labels = [label.decode("utf-8") for label in labels]
        except UnicodeDecodeError:
            raise EdgeRNNError(f"{path}: y holds byte labels that are not UTF-8") from None
    return [_label(label, f"{path}: y[{i}]") for i, label in enumerate(labels)]


def _regress_targets(path: Path, y: np.ndarray) -> list[np.ndarray]:
    if y.ndim not in (1, 2) or not np.issubdtype(y.dtype, np.floating) or 0 in y.shape[1:]:
        raise EdgeRNNError(
            f"{path}: regression y must be float (N,) or (N, K) with K >= 1, got {y.dtype} "
            f"{y.shape}"
        )
    return list(_finite_float32(path, "y", y[:, None] if y.ndim == 1 else y))
