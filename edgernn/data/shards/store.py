"""One store of encoded examples on disk: flat ``.npy`` arrays, appended to, read by slices.

A store holds the examples of one source file in file order:

- ``NAME.inputs.npy``: every example's inputs concatenated: int32 token ids (T,) or float32
  features (T, F);
- ``NAME.offsets.npy``: int64 (N + 1,), example ``i`` is ``inputs[offsets[i]:offsets[i + 1]]``;
- ``NAME.targets.npy``: int64 class ids (N,), float32 regression targets (N, K), or for
  per-step targets (tag, lm, seq2seq) int32 ids concatenated, with
  ``NAME.target_offsets.npy`` int64 (N + 1,).

Examples come back as exactly the tensors ``edgernn.data.prepare.encode`` makes (int64 ids,
float32 features), so training on a store is training on the in-memory list.
"""

from __future__ import annotations

import array
import io
import os
from pathlib import Path

import numpy as np
import torch

from edgernn.errors import EdgeRNNError

HEADER_BYTES = 128  # the .npy header is reserved up front and written once the shape is known
FLUSH_EXAMPLES = 4096  # examples buffered in memory between writes
PREPARE_AGAIN = "run edgernn prepare again"

# targets kind -> (dtype on disk, dtype of the tensors handed out)
TARGETS = {"class": np.int64, "values": np.float32, "steps": np.int32}


def targets_kind(task: str) -> str:
    """How a task's targets are stored: one class id, K values, or one id per step."""
    return {"classify": "class", "regress": "values"}.get(task, "steps")


class _Appender:
    """A ``.npy`` file written in pieces: the data is appended, the header written last."""

    def __init__(self, path: Path, dtype: type, width: int | None = None):
        self.path, self.dtype, self.width, self.rows = path, np.dtype(dtype), width, 0
        self.file = open(path, "wb")  # noqa: SIM115 -- closed by close()
        self.file.write(b"\0" * HEADER_BYTES)

    def append(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype)
        self.file.write(values.tobytes())
        self.rows += len(values)

    def close(self) -> None:
        shape = (self.rows,) if self.width is None else (self.rows, self.width)
        header = io.BytesIO()
        descr = np.lib.format.dtype_to_descr(self.dtype)
        np.lib.format.write_array_header_1_0(
            header, {"descr": descr, "fortran_order": False, "shape": shape}
        )
        assert len(header.getvalue()) == HEADER_BYTES, "shape too long for the reserved header"
        self.file.seek(0)
        self.file.write(header.getvalue())
        self.file.flush()
        self.file.close()


class StoreWriter:
    """Appends encoded ``(inputs, target)`` pairs to the files of one store."""

    def __init__(self, folder: Path, name: str, task: str, features: int | None):
        self.kind = targets_kind(task)
        ids = features is None
        dtype, width = (np.int32, None) if ids else (np.float32, features)
        self.inputs = _Appender(folder / f"{name}.inputs.npy", dtype, width)
        self.targets: _Appender | None = None
        self.lengths, self.target_lengths = array.array("q"), array.array("q")
        self.folder, self.name, self.longest = folder, name, 0
        self.pending: list[tuple[torch.Tensor, torch.Tensor]] = []

    def add(self, inputs: torch.Tensor, target: torch.Tensor) -> None:
        self.pending.append((inputs, target))
        self.lengths.append(len(inputs))
        self.longest = max(self.longest, len(inputs))
        if len(self.pending) >= FLUSH_EXAMPLES:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        self.inputs.append(np.concatenate([x.numpy() for x, _ in self.pending]))
        targets = [y.numpy() for _, y in self.pending]
        if self.targets is None:
            width = targets[0].shape[0] if self.kind == "values" else None
            path = self.folder / f"{self.name}.targets.npy"
            self.targets = _Appender(path, TARGETS[self.kind], width)
        if self.kind == "steps":
            self.target_lengths.extend(len(y) for y in targets)
            self.targets.append(np.concatenate(targets))
        else:
            self.targets.append(np.stack(targets))
        self.pending = []

    def close(self) -> dict:
        """Finish the files; returns the store's entry in ``shards.json``."""
        self._flush()
        self.inputs.close()
        self.targets.close()
        _save_offsets(self.folder / f"{self.name}.offsets.npy", self.lengths)
        if self.kind == "steps":
            _save_offsets(self.folder / f"{self.name}.target_offsets.npy", self.target_lengths)
        return {"count": len(self.lengths), "longest": self.longest}


def _save_offsets(path: Path, lengths: array.array) -> None:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(np.frombuffer(lengths, dtype=np.int64), out=offsets[1:])
    np.save(path, offsets)


class Store:
    """The arrays of one store; ``example(row)`` reads and decodes one pair."""

    def __init__(self, folder: Path, name: str, task: str, limits: dict[str, int]):
        self.kind = targets_kind(task)
        self.inputs = _Flat(folder / f"{name}.inputs.npy", (np.int32, np.float32), (1, 2))
        self.offsets = _load_offsets(folder / f"{name}.offsets.npy", len(self.inputs))
        count = len(self.offsets) - 1
        targets = folder / f"{name}.targets.npy"
        ndim = 2 if self.kind == "values" else 1
        self.targets = _Flat(targets, (TARGETS[self.kind],), (ndim,))
        if self.kind == "steps":
            where = folder / f"{name}.target_offsets.npy"
            self.target_offsets = _load_offsets(where, len(self.targets))
            _check_count(where, len(self.target_offsets) - 1, count)
        else:
            _check_count(targets, len(self.targets), count)
        self.limits, self.name = limits, folder / name

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def example(self, row: int) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = self.inputs.read(self.offsets[row], self.offsets[row + 1])
        if self.kind == "steps":
            target = self.targets.read(self.target_offsets[row], self.target_offsets[row + 1])
        else:
            target = self.targets.read(row, row + 1).reshape(self.targets.shape[1:])
        if inputs.dtype == np.int32:
            inputs = self._ids(inputs, "inputs", row).astype(np.int64)
        if self.kind != "values":
            target = self._ids(target, "targets", row).astype(np.int64)
        return torch.from_numpy(inputs), torch.from_numpy(target)

    def _ids(self, ids: np.ndarray, side: str, row: int) -> np.ndarray:
        # Checked per example (a few microseconds) rather than for the whole store on open,
        # which would read every byte of a store larger than memory.
        if ids.size and (ids.min() < 0 or ids.max() >= self.limits[side]):
            raise EdgeRNNError(
                f"{self.name}: example {row} holds {side} ids outside 0..{self.limits[side] - 1}; "
                f"the shards are damaged, {PREPARE_AGAIN}"
            )
        return ids


class _Flat:
    """A ``.npy`` array read a slice at a time with ``pread``.

    Why not slices of the memory map: every page a map has touched counts in the process's
    resident memory until the kernel evicts it, so an epoch would show the whole store as
    used memory; a read into a fresh buffer keeps only the slice (the page cache still
    serves repeated reads).
    """

    def __init__(self, path: Path, dtypes: tuple, ndims: tuple[int, ...]):
        mapped = load_array(path, dtypes, ndims)  # checks the header and size; reads no data
        self.dtype, self.shape, self.start = mapped.dtype, mapped.shape, mapped.offset
        self.row_bytes = mapped.dtype.itemsize * int(np.prod(mapped.shape[1:]))
        self.path, self.file = path, None

    def __len__(self) -> int:
        return self.shape[0]

    def __del__(self) -> None:
        if getattr(self, "file", None) is not None:
            self.file.close()

    def read(self, start: int, end: int) -> np.ndarray:
        if self.file is None:
            self.file = open(self.path, "rb", buffering=0)  # noqa: SIM115 -- closed by __del__
        values = np.empty((int(end - start), *self.shape[1:]), dtype=self.dtype)
        got = os.preadv(self.file.fileno(), [values], self.start + int(start) * self.row_bytes)
        if got != values.nbytes:
            raise EdgeRNNError(f"{self.path}: shorter than recorded; {PREPARE_AGAIN}")
        return values


def load_array(path: Path, dtypes: tuple, ndims: tuple[int, ...]) -> np.ndarray:
    """A memory-mapped ``.npy`` array of one of ``dtypes``; damage is an ``EdgeRNNError``."""
    try:
        values = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise EdgeRNNError(f"{path}: missing from the shards; {PREPARE_AGAIN}") from None
    except (OSError, ValueError, EOFError) as error:  # truncated, or not .npy
        raise EdgeRNNError(f"{path}: damaged ({error}); {PREPARE_AGAIN}") from None
    if values.dtype not in [np.dtype(d) for d in dtypes] or values.ndim not in ndims:
        raise EdgeRNNError(
            f"{path}: holds {values.dtype} of shape {values.shape}, not what edgernn prepare "
            f"writes; {PREPARE_AGAIN}"
        )
    return values


def _load_offsets(path: Path, size: int) -> np.ndarray:
    offsets = np.array(load_array(path, (np.int64,), (1,)))  # in memory: 8 bytes an example
    if len(offsets) < 2 or offsets[0] != 0 or offsets[-1] != size:
        raise EdgeRNNError(f"{path}: offsets do not span the data ({size} rows); {PREPARE_AGAIN}")
    if not (np.diff(offsets) >= 1).all():
        raise EdgeRNNError(f"{path}: offsets out of order or empty examples; {PREPARE_AGAIN}")
    return offsets


def _check_count(path: Path, found: int, expected: int) -> None:
    if found != expected:
        raise EdgeRNNError(f"{path}: {found} rows, expected {expected}; {PREPARE_AGAIN}")
