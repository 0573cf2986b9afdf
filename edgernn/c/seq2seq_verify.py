"""Every seq2seq C export is checked: compiled with the host's cc and compared with PyTorch.

Two checks on random sources: the decoder's logits step by step under teacher forcing (held
to float rounding, as the other tasks), and ``edgernn_translate``'s ids against the model's
own ``greedy``. int8 code is compared with the model whose matrices are its int8 rows
dequantized (``seq2seq_int8_reference``): what it computes.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgernn.c.harness import compile_harness, find_compiler
from edgernn.c.seq2seq_codegen import harness_source
from edgernn.c.seq2seq_weights import seq2seq_int8_reference
from edgernn.c.verify import TOLERANCE
from edgernn.data.vocab import BOS_ID
from edgernn.errors import EdgeRNNError
from edgernn.runtime.search import decode_limits

SOURCE_LENGTHS = (1, 3, 7, 12)  # none special to the code: the C has no traced shapes
TARGET_LENGTHS = (1, 4, 9, 6)  # decoder inputs under teacher forcing, BOS first


@dataclass(frozen=True)
class Case:
    """One harness input: a source, teacher-forced decoder inputs and translate's max_out."""

    src: np.ndarray  # (S,) int32
    tgt_in: np.ndarray  # (T,) int32, BOS first
    max_out: int


@dataclass(frozen=True)
class Result:
    """What the harness wrote for one case."""

    encode_status: int
    steps: list  # per decoder input: its (V,) float32 logits, or the int status
    translated: int  # edgernn_translate's return: ids written, or a negative status
    ids: list[int]
    intact: bool  # nothing written past out[max_out - 1]


def random_cases(spec, seed: int = 0) -> list[Case]:
    """Sources and decoder inputs over the whole vocabularies; max_out the default limit."""
    rng = np.random.default_rng(seed)
    cases = []
    for src_len, tgt_len in zip(SOURCE_LENGTHS, TARGET_LENGTHS, strict=True):
        src = rng.integers(0, spec.vocab_size, size=min(src_len, spec.max_len)).astype(np.int32)
        tgt = rng.integers(0, spec.num_outputs, size=tgt_len).astype(np.int32)
        tgt[0] = BOS_ID
        cases.append(Case(src, tgt, decode_limits([len(src)])[0]))
    return cases


def compile_seq2seq_harness(source_dir: Path, binary: Path, extra: tuple[str, ...] = ()) -> Path:
    """``compile_harness`` with the seq2seq harness (encode / decode_step / translate)."""
    return compile_harness(source_dir, binary, extra, harness_source())


def run_seq2seq_harness(binary: Path, cases: list[Case], vocab: int) -> tuple[int, list[Result]]:
    """Feed ``cases`` to ``binary``; returns the status of a step before any source, and
    one ``Result`` per case. ``vocab`` is the model's EDGERNN_TGT_VOCAB."""
    chunks = [np.int32(len(cases)).tobytes()]
    for case in cases:
        for ids in (case.src, case.tgt_in):
            chunks += [np.int32(len(ids)).tobytes(), np.ascontiguousarray(ids, np.int32).tobytes()]
        chunks.append(np.int32(case.max_out).tobytes())
    done = subprocess.run([str(binary)], input=b"".join(chunks), capture_output=True)
    if done.returncode != 0:
        raise EdgeRNNError(f"the C harness failed: {done.stderr.decode(errors='replace')[:300]}")
    reader = _Reader(done.stdout)
    first = reader.int()
    results = []
    for case in cases:
        encoded, steps = reader.int(), []
        for _ in case.tgt_in if encoded == 0 else ():
            status = reader.int()
            steps.append(reader.floats(vocab) if status == 0 else status)
        translated = reader.int()
        ids = reader.ints(translated) if translated >= 0 else []
        results.append(Result(encoded, steps, translated, ids, bool(reader.int())))
    return first, results


def reference_logits(model: nn.Module, case: Case) -> np.ndarray:
    """PyTorch's teacher-forced logits for one case, (T, V)."""
    src = torch.from_numpy(case.src.astype(np.int64))[None]
    tgt = torch.from_numpy(case.tgt_in.astype(np.int64))[None]
    with torch.no_grad():
        return model.eval()(src, torch.tensor([len(case.src)]), tgt)[0].numpy()


def reference_greedy(model: nn.Module, case: Case) -> list[int]:
    """PyTorch's greedy ids for one case, with the same limit as the C call."""
    src = torch.from_numpy(case.src.astype(np.int64))[None]
    return model.greedy(src, torch.tensor([len(case.src)]), max_len=case.max_out)[0]


def verify_seq2seq_c(model: nn.Module, folder: Path, int8: bool) -> dict:
    """Compile ``folder``'s model.c and compare it with ``model`` on random sources.

    Returns:
        The parity record: ``checked``, ``max_abs_diff`` (teacher-forced logits),
        ``greedy_equal`` (sources whose greedy ids equal PyTorch's, of ``sources``) and
        ``against``; for int8 also ``max_abs_diff_vs_fp32``. ``checked`` is False, with a
        ``note``, when no C compiler is found.

    Raises:
        EdgeRNNError: the code does not compile, refuses a valid source, differs from
            PyTorch past ``TOLERANCE``, or decodes other ids than PyTorch's greedy.
    """
    if find_compiler() is None:
        return {"checked": False, "note": "no C compiler (cc) found; the C code is not checked"}
    reference = seq2seq_int8_reference(model) if int8 else model.eval()
    cases = random_cases(model.spec)
    with tempfile.TemporaryDirectory(prefix="edgernn-c-") as work:
        binary = compile_seq2seq_harness(folder, Path(work) / "harness")
        _, results = run_seq2seq_harness(binary, cases, model.spec.num_outputs)
    got = [_logits(result) for result in results]
    wanted = [reference_logits(reference, case) for case in cases]
    against = "PyTorch with the int8 weights" if int8 else "PyTorch fp32"
    diff = _max_diff(got, wanted)
    equal = sum(
        r.ids == reference_greedy(reference, c) for r, c in zip(results, cases, strict=True)
    )
    record = {"checked": True, "max_abs_diff": diff, "against": against}
    record |= {"greedy_equal": equal, "sources": len(cases)}
    if int8:
        record["max_abs_diff_vs_fp32"] = _max_diff(got, [reference_logits(model, c) for c in cases])
    bound = TOLERANCE * max(1.0, max(float(np.abs(w).max()) for w in wanted))
    if not diff <= bound or equal != len(cases):
        raise EdgeRNNError(
            f"the C code differs from {against}: logits by {diff:.3g} (allowed {bound:.3g}), "
            f"greedy ids equal on {equal} of {len(cases)} sources; this is a bug in edgernn's "
            "C target: please report it with the checkpoint"
        )
    return record


def _logits(result: Result) -> np.ndarray:
    statuses = [result.encode_status] + [s for s in result.steps if isinstance(s, int)]
    statuses += [result.translated] if result.translated < 0 else []
    if any(statuses) or not result.intact:
        raise EdgeRNNError(f"the C code refused a valid source (status {min(statuses)})")
    return np.stack(result.steps)


def _max_diff(got: list, wanted: list) -> float:
    return max(float(np.abs(g - w).max()) for g, w in zip(got, wanted, strict=True))


class _Reader:
    """Little-endian int32 / float32 values off the harness's output, in order."""

    def __init__(self, data: bytes):
        self.data, self.offset = data, 0

    def _take(self, dtype, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, dtype, count, self.offset)
        self.offset += 4 * count
        return values

    def int(self) -> int:
        return int(self._take(np.int32, 1)[0])

    def ints(self, count: int) -> list[int]:
        return self._take(np.int32, count).tolist()

    def floats(self, count: int) -> np.ndarray:
        return self._take(np.float32, count).copy()
