"""Every C export is checked: compiled with the host's cc and compared with PyTorch.

The int8 code is compared with the model whose weights are the same int8 rows dequantized
(``int8_reference``), which is what it computes, so both precisions are held to float
rounding; how far int8 moved the outputs from the fp32 model is reported beside it. The
integer-only code is held to the same int8 model within ``INTEGER_TOLERANCE`` (its fixed
point rounds every activation), and its streaming steps must equal its whole-sequence run
exactly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgernn.c.fixed import FixedFormat
from edgernn.c.harness import compile_harness, find_compiler, run_harness
from edgernn.c.layout import per_step
from edgernn.c.weights import int8_reference
from edgernn.data.meta import denormalize_y, normalize_x
from edgernn.errors import EdgeRNNError

LENGTHS = (1, 3, 7, 12)  # none of them special to the code: the C has no traced shapes
TOLERANCE = 1e-4  # times max(1, |output|): float32 rounding of a few hundred products
# Integer-only: INTEGER_TOLERANCE times max |output| plus INTEGER_ATOL. Q12 activations
# (steps of 2.4e-4) and the 1.2e-4 tanh table, through the layers and steps, moved trained
# hidden-64 models by at most 0.16 % of their output range and the tiny test models by
# 0.09 % (measured); a tanh table 10 % off, a wrong shift or gate moves them by several %.
INTEGER_TOLERANCE = 0.01
INTEGER_ATOL = 2.0**-10  # four Q12 steps, for models whose outputs are all near 0


def random_sequences(spec, norm: dict | None, lengths=LENGTHS, seed: int = 0) -> list:
    """Inputs the C code takes: (T,) int32 token ids, or (T, F) raw float32 features."""
    rng = np.random.default_rng(seed)
    lengths = [min(length, spec.max_len) for length in lengths]
    if spec.vocab_size:
        return [rng.integers(0, spec.vocab_size, size=n).astype(np.int32) for n in lengths]
    mean, std = _x_scaling(spec, norm)
    return [
        (rng.normal(size=(n, spec.input_size)) * std + mean).astype(np.float32) for n in lengths
    ]


def reference_outputs(model: nn.Module, sequences: list, norm: dict | None) -> list:
    """What PyTorch computes for each sequence alone, flattened as the harness writes it."""
    spec, results = model.spec, []
    for frames in sequences:
        if spec.vocab_size:
            inputs = torch.from_numpy(frames.astype(np.int64))[None]
        else:
            mean, std = _x_scaling(spec, norm)
            inputs = torch.from_numpy(normalize_x(frames, {"x_mean": mean, "x_std": std}))[None]
        with torch.no_grad():
            out = model(inputs, torch.tensor([len(frames)])).numpy()[0]
        if spec.task == "regress" and norm and "y_mean" in norm:
            out = denormalize_y(out, norm)
        results.append(np.asarray(out, dtype=np.float32).reshape(-1))
    return results


def verify_c(
    model: nn.Module,
    folder: Path,
    norm: dict | None,
    int8: bool,
    fixed: FixedFormat | None = None,
) -> dict:
    """Compile ``folder``'s model.c and compare it with ``model`` on random sequences.

    Args:
        fixed: the ``FixedFormat`` of integer-only code, else None.

    Returns:
        The parity record: ``checked``, ``max_abs_diff``, ``against`` and ``tolerance``; for
        int8 also ``max_abs_diff_vs_fp32`` (what quantization moved), for integer-only
        ``steps_equal_run``. ``checked`` is False, with a ``note``, when no C compiler is
        found.

    Raises:
        EdgeRNNError: the code does not compile, differs from PyTorch past ``TOLERANCE``
            (``INTEGER_TOLERANCE``), or its streaming steps differ from its run.
    """
    if find_compiler() is None:
        return {"checked": False, "note": "no C compiler (cc) found; the C code is not checked"}
    spec = model.spec
    reference = int8_reference(model) if int8 else model.eval()
    sequences = random_sequences(spec, norm)
    with tempfile.TemporaryDirectory(prefix="edgernn-c-") as work:
        binary = compile_harness(folder, Path(work) / "harness")
        got = run_harness(binary, sequences, spec.num_outputs, per_step(spec))
        steps_equal = _steps_equal_run(binary, spec, sequences, got) if fixed else None
    wanted = reference_outputs(reference, sequences, norm)
    diff = _max_diff(got, wanted)
    against = _against(int8) + (", integer-only C" if fixed else "")
    record = {"checked": True, "max_abs_diff": diff, "against": against}
    if int8:
        record["max_abs_diff_vs_fp32"] = _max_diff(got, reference_outputs(model, sequences, norm))
    peak = max(float(np.abs(w).max()) for w in wanted)
    bound = INTEGER_TOLERANCE * peak + INTEGER_ATOL if fixed else TOLERANCE * max(1.0, peak)
    record["tolerance"] = bound
    if steps_equal is not None:
        record["steps_equal_run"] = steps_equal
        if not steps_equal:
            raise EdgeRNNError(
                "the integer-only C code's edgernn_step differs from its edgernn_run; this is "
                "a bug in edgernn's C target: please report it with the checkpoint"
            )
    if not diff <= bound:
        raise EdgeRNNError(
            f"the C code differs from {record['against']} by {diff:.3g} (allowed {bound:.3g}); "
            "this is a bug in edgernn's C target: please report it with the checkpoint"
        )
    return record


def _steps_equal_run(binary: Path, spec, sequences: list, whole: list) -> bool | None:
    """Whether stepping frame by frame gives exactly what the run gave (None: no streaming)."""
    if spec.directions == 2:
        return None
    stepped = run_harness(binary, sequences, spec.num_outputs, per_step(spec), step=True)
    tail = 0 if per_step(spec) else spec.num_outputs  # sequence tasks: the last step's
    return all(
        isinstance(s, np.ndarray) and np.array_equal(s[-tail:] if tail else s, w)
        for s, w in zip(stepped, whole, strict=True)
    )


def _against(int8: bool) -> str:
    return "PyTorch with the int8 weights" if int8 else "PyTorch fp32"


def _max_diff(got: list, wanted: list) -> float:
    for result in got:
        if not isinstance(result, np.ndarray):
            raise EdgeRNNError(f"the C code refused a valid sequence (status {result})")
    return max(float(np.abs(g - w).max()) for g, w in zip(got, wanted, strict=True))


def _x_scaling(spec, norm: dict | None) -> tuple[np.ndarray, np.ndarray]:
    if norm and "x_mean" in norm:
        return np.asarray(norm["x_mean"], np.float32), np.asarray(norm["x_std"], np.float32)
    return np.zeros(spec.input_size, np.float32), np.ones(spec.input_size, np.float32)
