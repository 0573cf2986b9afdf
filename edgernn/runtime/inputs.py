"""Read ``edgernn predict`` inputs: literal strings, or .txt / .tsv / .csv / .npz files.

Torch-free (stdlib + numpy), like the runtime it feeds.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from edgernn.errors import EdgeRNNError
from edgernn.npz import load_npz

FILE_SUFFIXES = (".txt", ".tsv", ".csv", ".npz")


def read_inputs(arguments: list[str], numeric: bool) -> list:
    """Inputs in order: each argument is a file (by suffix, if it exists) or a literal text.

    Args:
        arguments: what the user typed after the bundle.
        numeric: the model takes features: only ``.npz`` files are accepted.

    Returns:
        Texts, or (T, F) float arrays for numeric models.

    Example::

        read_inputs(["great film", "reviews.txt"], numeric=False)
    """
    items: list = []
    for argument in arguments:
        path = Path(argument)
        if path.suffix.lower() in FILE_SUFFIXES and path.is_file():
            items += _read_file(path, numeric)
        elif numeric:
            raise EdgeRNNError(
                f"{argument}: this model takes numeric sequences; give an existing .npz file"
            )
        else:
            items.append(argument)
    if arguments and not items:
        raise EdgeRNNError(f"no inputs: {', '.join(arguments)} holds no non-blank line or row")
    return items


def read_stdin(data: bytes) -> list[str]:
    """The non-blank lines of ``data`` (stdin's bytes): arguments for ``read_inputs``.

    Decoded as UTF-8 whatever the locale, as files are, so ``LC_ALL=C`` changes nothing.

    Raises:
        EdgeRNNError: bytes that are not UTF-8, or no non-blank line (the same answer as an
            empty file).
    """
    lines = _text_lines(_decode(data, "<stdin>"))
    if not lines:
        raise EdgeRNNError("no inputs: give INPUT arguments or lines on stdin")
    return lines


def _decode(data: bytes, name: object) -> str:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise EdgeRNNError(
            f"{name}:{line}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None


def _text_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _read_file(path: Path, numeric: bool) -> list:
    suffix = path.suffix.lower()
    if numeric != (suffix == ".npz"):
        wanted = ".npz files" if numeric else "text (.txt, .tsv, .csv)"
        raise EdgeRNNError(f"{path}: this model takes {wanted}")
    if suffix == ".npz":
        return _read_npz(path)
    text = _decode(path.read_bytes(), path)
    if suffix == ".txt":
        return _text_lines(text)
    try:
        return _read_table(text, "\t" if suffix == ".tsv" else ",")
    except csv.Error as error:  # e.g. a field over csv.field_size_limit() (128 KiB)
        raise EdgeRNNError(f"{path}: not valid {suffix} ({error})") from None


def _read_table(text: str, delimiter: str) -> list[str]:
    # A header with a "text" column picks that column; otherwise the first column, so a
    # seq2seq "source<TAB>target" file or a bare list of sources both work.
    rows = [row for row in csv.reader(text.splitlines(), delimiter=delimiter) if any(row)]
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    column = header.index("text") if "text" in header else 0
    body = rows[1:] if "text" in header else rows
    return [row[column] for row in body if len(row) > column and row[column].strip()]


def _read_npz(path: Path) -> list[np.ndarray]:
    arrays = load_npz(path, required=("x",), optional=("lengths",))
    x = arrays["x"]
    if x.ndim != 3 or x.dtype.kind not in "fiu":
        raise EdgeRNNError(
            f"{path}: 'x' must be a numeric (N, T, F) array, got {x.dtype} {x.shape}"
        )
    lengths = arrays.get("lengths", np.full(len(x), x.shape[1]))
    if (
        lengths.shape != (len(x),)
        or lengths.dtype.kind not in "iu"
        or np.any(lengths < 1)
        or np.any(lengths > x.shape[1])
    ):
        raise EdgeRNNError(f"{path}: 'lengths' must hold one integer in 1..{x.shape[1]} per row")
    x = x.astype(np.float64)
    return [x[row, : int(length)] for row, length in enumerate(lengths)]
