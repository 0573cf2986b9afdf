"""The C target: generated C99 compiles warning-free and computes what the PyTorch model does."""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from c_cases import module_scratch, needs_compiler
from click.testing import CliRunner
from export_cases import CELLS, make_checkpoint

from edgernn.c import CExportConfig, CModule, build_bench, c_latency_ms, export_c
from edgernn.c import fixed as fixed_module
from edgernn.c import verify as verify_module
from edgernn.c.fixed import tanh_table as good_table
from edgernn.c.harness import CFLAGS, STRICT, compile_harness, find_compiler, run_harness
from edgernn.c.verify import random_sequences
from edgernn.c.weights import int8_reference
from edgernn.checkpoint import save_checkpoint
from edgernn.cli import main
from edgernn.data.meta import denormalize_y, normalize_x
from edgernn.errors import EdgeRNNError

TASKS = ("classify", "regress", "tag", "lm")
# fp32: every cell x layers x direction x task (a language model is never bidirectional).
FP32 = [
    (task, cell, layers, bidirectional)
    for task in TASKS
    for cell in CELLS
    for layers in (1, 2)
    for bidirectional in (False, True)
    if not (task == "lm" and bidirectional)
]
# int8: every cell x direction, each task at least twice, two layers.
INT8 = [
    ("classify", "lstm", 2, True),
    ("classify", "gru", 2, False),
    ("regress", "rnn", 2, True),
    ("regress", "lstm", 2, False),
    ("tag", "gru", 2, True),
    ("tag", "rnn", 2, False),
    ("lm", "lstm", 2, False),
    ("lm", "gru", 1, False),
]
LENGTHS = (1, 2, 5, 9, 12)
FP32_ATOL = 1e-5
# The int8 code computes the model whose weights are its int8 rows dequantized: the same maths,
# so float rounding alone separates them.
INT8_ATOL = 1e-5
# Against the fp32 model: each weight moves by at most half a step, max|row| / 254 (0.4 % of
# the row's peak); through two layers and 12 steps of contracting tanh/sigmoid the outputs of
# these models move by 0.7 % of their range at most (measured), so 2 % leaves 3x headroom
# while still catching a wrong scale (off by a factor) or a transposed row.
INT8_VS_FP32 = 0.02

_ROOT, _cleanup = module_scratch("edgernn-c-tests-")


@functools.cache
def _built(task, cell, layers, bidirectional, precision, pooling="last", max_len=512):
    """``(checkpoint, binary)``: exported (unverified: these tests check it) and compiled once.

    ``precision`` "integer" is int8 weights with integer-only code.
    """
    overrides = {"layers": layers, "pooling": pooling, "max_len": max_len}
    checkpoint = make_checkpoint(task, cell, bidirectional, **overrides)
    name = f"{task}-{cell}-{layers}-{bidirectional}-{precision}-{pooling}-{max_len}"
    folder = _ROOT / name
    integer = precision == "integer"
    config = CExportConfig("int8" if integer else precision, verify=False, integer_only=integer)
    export_c(checkpoint, folder, config)
    return checkpoint, compile_harness(folder, _ROOT / f"{name}.bin")


def _torch_batch(checkpoint, sequences, int8: bool) -> list[np.ndarray]:
    # One padded batch, so padding must not change a result (the C code never sees any).
    model = checkpoint.build()
    model = int8_reference(model) if int8 else model
    spec, norm = checkpoint.spec, checkpoint.meta.norm
    lengths = torch.tensor([len(s) for s in sequences])
    longest = int(lengths.max())
    if spec.vocab_size:
        inputs = torch.zeros(len(sequences), longest, dtype=torch.long)
        for row, frames in enumerate(sequences):
            inputs[row, : len(frames)] = torch.from_numpy(frames.astype(np.int64))
    else:
        inputs = torch.zeros(len(sequences), longest, spec.input_size)
        for row, frames in enumerate(sequences):
            inputs[row, : len(frames)] = torch.from_numpy(normalize_x(frames, norm))
    with torch.no_grad():
        out = model(inputs, lengths).numpy()
    if spec.task == "regress":
        out = denormalize_y(out, norm)
    if spec.task in ("tag", "lm"):
        return [out[row, :length].reshape(-1) for row, length in enumerate(lengths.tolist())]
    return [row.reshape(-1) for row in out]


def _run(checkpoint, binary, sequences, step=False):
    spec = checkpoint.spec
    got = run_harness(binary, sequences, spec.num_outputs, spec.task in ("tag", "lm"), step)
    assert all(isinstance(g, np.ndarray) for g in got), got
    return got


def _max_diff(got, wanted) -> float:
    return max(float(np.abs(g - w).max()) for g, w in zip(got, wanted, strict=True))


def _sequences(checkpoint, seed=1):
    return random_sequences(checkpoint.spec, checkpoint.meta.norm, LENGTHS, seed=seed)


@pytest.mark.parametrize("task, cell, layers, bidirectional", FP32)
def test_fp32_c_matches_pytorch(task, cell, layers, bidirectional):
    needs_compiler()
    checkpoint, binary = _built(task, cell, layers, bidirectional, "fp32")
    sequences = _sequences(checkpoint)
    got = _run(checkpoint, binary, sequences)
    assert _max_diff(got, _torch_batch(checkpoint, sequences, int8=False)) <= FP32_ATOL


@pytest.mark.parametrize("task, cell, layers, bidirectional", INT8)
def test_int8_c_computes_the_int8_weights(task, cell, layers, bidirectional):
    needs_compiler()
    checkpoint, binary = _built(task, cell, layers, bidirectional, "int8")
    sequences = _sequences(checkpoint)
    got = _run(checkpoint, binary, sequences)
    assert _max_diff(got, _torch_batch(checkpoint, sequences, int8=True)) <= INT8_ATOL
    fp32 = _torch_batch(checkpoint, sequences, int8=False)
    scale = max(1.0, max(float(np.abs(w).max()) for w in fp32))
    assert 0 < _max_diff(got, fp32) <= INT8_VS_FP32 * scale  # 0: int8 was not applied at all


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("cell", CELLS)
def test_streaming_steps_equal_the_whole_sequence(task, cell):
    needs_compiler()
    checkpoint, binary = _built(task, cell, 2, False, "fp32")
    sequences = _sequences(checkpoint, seed=2)
    stepped = _run(checkpoint, binary, sequences, step=True)
    whole = _run(checkpoint, binary, sequences)
    k = checkpoint.spec.num_outputs
    for steps, run, frames in zip(stepped, whole, sequences, strict=True):
        if task in ("tag", "lm"):
            np.testing.assert_array_equal(steps, run)
        else:  # the outputs for the sequence so far: the last step's are the sequence's
            np.testing.assert_array_equal(steps[-k:], run)
            prefixes = [frames[: t + 1] for t in range(len(frames))]
            wanted = np.concatenate(_torch_batch(checkpoint, prefixes, int8=False))
            assert float(np.abs(steps - wanted).max()) <= FP32_ATOL


@pytest.mark.parametrize("pooling", ["mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_mean_and_max_pooling(pooling, bidirectional):
    needs_compiler()
    for precision in ("fp32", "int8"):
        checkpoint, binary = _built("classify", "gru", 2, bidirectional, precision, pooling)
        sequences = _sequences(checkpoint)
        got = _run(checkpoint, binary, sequences)
        wanted = _torch_batch(checkpoint, sequences, int8=precision == "int8")
        assert _max_diff(got, wanted) <= FP32_ATOL
    if not bidirectional:
        stepped = _run(checkpoint, binary, sequences, step=True)
        k = checkpoint.spec.num_outputs
        assert all(np.array_equal(s[-k:], r) for s, r in zip(stepped, got, strict=True))


@pytest.mark.parametrize("task, cell, layers, bidirectional", INT8)
def test_generated_code_is_clean_under_strict_embedded_warnings(task, cell, layers, bidirectional):
    needs_compiler()
    _, binary = _built(task, cell, layers, bidirectional, "int8")
    folder = binary.with_suffix("")  # the sources sit beside their harness
    command = [find_compiler(), *CFLAGS, *STRICT, "-c", str(folder / "model.c")]
    done = subprocess.run([*command, "-o", str(folder / "model.o")], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def _host_has_avx2() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text().split() if cpuinfo.exists() else []
    return "avx2" in flags and "fma" in flags


@pytest.mark.parametrize("task, cell, layers, bidirectional", INT8)
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_avx2_kernels_compute_what_the_portable_code_does(
    task, cell, layers, bidirectional, precision
):
    needs_compiler()
    if not _host_has_avx2():
        pytest.skip("the host has no AVX2 + FMA to run the AVX2 kernels on")
    checkpoint, portable = _built(task, cell, layers, bidirectional, precision)
    folder = portable.with_suffix("")
    avx2 = compile_harness(folder, folder.with_suffix(".avx2.bin"), (*STRICT, "-mavx2", "-mfma"))
    sequences = _sequences(checkpoint)
    got = _run(checkpoint, avx2, sequences)
    assert _max_diff(got, _torch_batch(checkpoint, sequences, precision == "int8")) <= FP32_ATOL
    assert _max_diff(got, _run(checkpoint, portable, sequences)) <= FP32_ATOL


def test_bad_tokens_and_lengths_are_refused_by_status():
    needs_compiler()
    checkpoint, binary = _built("tag", "lstm", 1, True, "int8", max_len=8)
    spec = checkpoint.spec
    good = np.array([4, 5, 6], dtype=np.int32)
    cases = [good, np.array([4, spec.vocab_size], np.int32), np.array([-1], np.int32)]
    cases += [np.zeros(0, np.int32), np.full(8, 4, np.int32), np.full(9, 4, np.int32)]
    got = run_harness(binary, cases, spec.num_outputs, per_step=True)
    statuses = [g if isinstance(g, int) else 0 for g in got]
    assert statuses == [0, -2, -2, -1, 0, -1]  # EDGERNN_ERR_TOKEN -2, EDGERNN_ERR_LENGTH -1


def test_max_len_can_be_lowered_at_compile_time(tmp_path):
    needs_compiler()
    checkpoint = make_checkpoint("classify", "rnn", True)
    export_c(checkpoint, tmp_path / "src", CExportConfig(verify=False))
    binary = compile_harness(tmp_path / "src", tmp_path / "h", ("-DEDGERNN_MAX_LEN=4",))
    cases = [np.full(4, 5, np.int32), np.full(5, 5, np.int32)]
    got = run_harness(binary, cases, checkpoint.spec.num_outputs, per_step=False)
    assert isinstance(got[0], np.ndarray) and got[1] == -1


def test_stated_sizes_are_checked_by_the_compiler(tmp_path):
    needs_compiler()
    result = export_c(make_checkpoint("lm", "gru"), tmp_path, CExportConfig(verify=False))
    header = (tmp_path / "model.h").read_text()
    flash = f"#define EDGERNN_FLASH_BYTES {result['flash_bytes']}\n"
    assert flash in header
    compile_harness(tmp_path, tmp_path / "ok")
    (tmp_path / "model.h").write_text(header.replace(flash, flash.replace(" 1", " 9")))
    with pytest.raises(EdgeRNNError, match="does not compile"):
        compile_harness(tmp_path, tmp_path / "bad")


def test_int8_weights_take_about_a_quarter_of_the_flash(tmp_path):
    checkpoint = make_checkpoint("classify", "lstm", hidden=16)
    fp32 = export_c(checkpoint, tmp_path / "a", CExportConfig("fp32", verify=False))
    int8 = export_c(checkpoint, tmp_path / "b", CExportConfig("int8", verify=False))
    assert fp32["flash_bytes"] >= 4 * fp32["weights"]
    assert int8["flash_bytes"] < 0.4 * fp32["flash_bytes"]
    assert fp32["ram_bytes"] == int8["ram_bytes"] > 0


def test_generated_code_uses_no_libc_beyond_math(tmp_path):
    export_c(make_checkpoint("regress", "lstm", True), tmp_path, CExportConfig(verify=False))
    source = (tmp_path / "model.c").read_text() + (tmp_path / "model.h").read_text()
    includes = {line.split()[1] for line in source.splitlines() if line.startswith("#include")}
    # immintrin.h is the compiler's (AVX2 intrinsics, included only when __AVX2__ is on), not libc
    assert includes == {"<math.h>", '"model.h"', "<stddef.h>", "<stdint.h>", "<immintrin.h>"}
    assert "#if defined(__AVX2__) && defined(__FMA__)\n#include <immintrin.h>" in source
    assert "malloc(" not in source and "printf(" not in source
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["norm"]["y_std"] == [3.0, 0.5]


def test_export_checks_itself_and_says_so_without_a_compiler(tmp_path, monkeypatch):
    needs_compiler()
    result = export_c(make_checkpoint("tag", "gru"), tmp_path / "a")
    assert result["parity"]["checked"] and result["parity"]["max_abs_diff"] <= FP32_ATOL
    assert result["parity"]["max_abs_diff_vs_fp32"] > 0
    monkeypatch.setattr(verify_module, "find_compiler", lambda: None)
    result = export_c(make_checkpoint("tag", "gru"), tmp_path / "b")
    assert not result["parity"]["checked"] and "no C compiler" in result["parity"]["note"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"embed_rank": 3}, "low-rank embedding"),
        ({"embed_buckets": 6}, "hashed embedding"),
    ],
)
def test_unsupported_models_are_refused_in_one_line(tmp_path, overrides, message):
    # seq2seq is written by edgernn.c.seq2seq (its own tests)
    checkpoint = make_checkpoint("classify", "gru", **overrides)
    with pytest.raises(EdgeRNNError, match=message) as error:
        export_c(checkpoint, tmp_path)
    assert "\n" not in str(error.value)
    assert not any(tmp_path.iterdir())


def test_bad_output_precision_and_weights_are_refused(tmp_path):
    checkpoint = make_checkpoint("classify", "rnn")
    (tmp_path / "file").write_text("x")
    with pytest.raises(EdgeRNNError, match="is a file"):
        export_c(checkpoint, tmp_path / "file" / "out")
    with pytest.raises(EdgeRNNError, match="unknown precision"):
        CExportConfig(precision="int4")
    checkpoint.state_dict["head.bias"][0] = float("nan")
    with pytest.raises(EdgeRNNError, match="NaN"):
        export_c(checkpoint, tmp_path / "out")


def test_cli_target_c(tmp_path):
    needs_compiler()
    path = save_checkpoint(make_checkpoint("regress", "gru"), tmp_path / "model.pt")
    out = tmp_path / "c"
    result = CliRunner().invoke(
        main, ["export", str(path), "--target", "c", "--no-int8", "-o", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output.strip().splitlines()[-1])
    assert payload["precision"] == "fp32" and payload["parity"]["checked"]
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "meta.json", "model.c", "model.h"]
    refused = CliRunner().invoke(
        main, ["export", str(path), "--target", "c", "--per-channel", "-o", str(out)]
    )
    assert refused.exit_code != 0 and "--per-channel applies to ONNX" in refused.output


# Integer-only: every cell x direction x task, one and two layers, mean and max pooling.
INTEGER = [
    ("classify", "lstm", 2, False, "last"),
    ("classify", "gru", 1, True, "mean"),
    ("classify", "rnn", 2, False, "max"),
    ("classify", "lstm", 1, True, "max"),
    ("classify", "gru", 2, False, "mean"),
    ("regress", "rnn", 2, True, "last"),
    ("regress", "lstm", 1, False, "last"),
    ("regress", "gru", 2, False, "last"),
    ("tag", "gru", 2, True, "last"),
    ("tag", "rnn", 1, False, "last"),
    ("tag", "lstm", 2, True, "last"),
    ("lm", "lstm", 2, False, "last"),
    ("lm", "gru", 1, False, "last"),
    ("lm", "rnn", 2, False, "last"),
]
# Against the same int8 weights in PyTorch: Q12 activations (steps of 2.4e-4) and the tanh
# table (1.2e-4) are all that differ; these models stay below 1e-3 (measured), while a wrong
# shift or gate is off by a good part of the outputs' range (0.1-1).
INTEGER_ATOL = 3e-3


@pytest.mark.parametrize("task, cell, layers, bidirectional, pooling", INTEGER)
def test_integer_only_c_matches_pytorch(task, cell, layers, bidirectional, pooling):
    needs_compiler()
    checkpoint, binary = _built(task, cell, layers, bidirectional, "integer", pooling)
    sequences = _sequences(checkpoint)
    got = _run(checkpoint, binary, sequences)
    assert _max_diff(got, _torch_batch(checkpoint, sequences, int8=True)) <= INTEGER_ATOL
    fp32 = _torch_batch(checkpoint, sequences, int8=False)
    scale = max(1.0, max(float(np.abs(w).max()) for w in fp32))
    assert _max_diff(got, fp32) <= INT8_VS_FP32 * scale


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("cell", CELLS)
def test_integer_only_steps_equal_the_whole_sequence_exactly(task, cell):
    needs_compiler()
    pooling = {"classify": "mean", "regress": "max"}.get(task, "last")
    checkpoint, binary = _built(task, cell, 2, False, "integer", pooling)
    sequences = _sequences(checkpoint, seed=2)
    stepped = _run(checkpoint, binary, sequences, step=True)
    whole = _run(checkpoint, binary, sequences)
    k = checkpoint.spec.num_outputs
    for steps, run in zip(stepped, whole, strict=True):
        np.testing.assert_array_equal(steps if task in ("tag", "lm") else steps[-k:], run)


def _compiles_without_floating_point(source: Path) -> subprocess.CompletedProcess:
    # -mgeneral-regs-only: the compiler may not use FP or SIMD registers, so any float or
    # double arithmetic is an error; float and double as names catch a type left in.
    command = [find_compiler(), *CFLAGS, *STRICT, "-mgeneral-regs-only", "-Dfloat=no_float"]
    command += ["-Ddouble=no_double", "-c", str(source), "-o", str(source.with_suffix(".o"))]
    return subprocess.run(command, capture_output=True, text=True)


@pytest.mark.parametrize("task, cell, layers, bidirectional, pooling", INTEGER[::2])
def test_integer_only_code_has_no_floating_point(
    tmp_path, task, cell, layers, bidirectional, pooling
):
    needs_compiler()
    probe = tmp_path / "probe.c"
    probe.write_text("int probe(int x);\nint probe(int x) { return x + 1; }\n")
    if _compiles_without_floating_point(probe).returncode != 0:
        pytest.skip("the compiler has no -mgeneral-regs-only")
    _, binary = _built(task, cell, layers, bidirectional, "integer", pooling)
    source = binary.with_suffix("") / "model.c"
    text = source.read_text()
    assert "#include <math.h>" not in text
    done = _compiles_without_floating_point(source)
    assert done.returncode == 0, done.stderr
    # the check bites: one product with a double constant in the engine and it fails
    broken = tmp_path / "model.c"
    entry = "static int16_t saturate16(int32_t v)\n{\n"
    broken.write_text(text.replace(entry, entry + "    v = (int32_t)(v * 1.5);\n"))
    assert entry in text and broken.read_text() != text
    assert _compiles_without_floating_point(broken).returncode != 0


def test_integer_only_header_states_the_fixed_point_formats(tmp_path):
    result = export_c(
        make_checkpoint("regress", "gru"), tmp_path, CExportConfig(integer_only=True, verify=False)
    )
    header = (tmp_path / "model.h").read_text()
    # x_mean 0.5, x_std 2: mean + 8 std = 16.5 leaves room for Q25; inputs take at most Q16
    assert "#define EDGERNN_INPUT_FRAC_BITS 16\n" in header
    assert "#define EDGERNN_OUTPUT_FRAC_BITS 12\n" in header
    assert (
        "typedef int32_t edgernn_input;" in header and "typedef int32_t edgernn_output;" in header
    )
    assert "int16_t h[EDGERNN_LAYERS][EDGERNN_HIDDEN];" in header
    assert result["integer_only"] and "Q16" in (tmp_path / "README.md").read_text()
    source = (tmp_path / "model.c").read_text()
    includes = {line.split()[1] for line in source.splitlines() if line.startswith("#include")}
    assert includes == {'"model.h"'}


def test_integer_only_export_verifies_itself_and_catches_a_wrong_table(tmp_path, monkeypatch):
    needs_compiler()
    checkpoint = make_checkpoint("classify", "lstm", pooling="mean")
    parity = export_c(checkpoint, tmp_path / "a", CExportConfig(integer_only=True))["parity"]
    assert parity["checked"] and parity["steps_equal_run"]
    assert 0 < parity["max_abs_diff"] <= INTEGER_ATOL and parity["max_abs_diff_vs_fp32"] > 0
    # a bug of a few percent in every tanh and sigmoid fails the export, which writes nothing
    monkeypatch.setattr(fixed_module, "tanh_table", lambda: (good_table() * 0.9).astype(np.int16))
    with pytest.raises(EdgeRNNError, match="differs from PyTorch"):
        export_c(checkpoint, tmp_path / "b", CExportConfig(integer_only=True))
    assert not (tmp_path / "b").exists()


def test_integer_only_refuses_a_row_that_could_overflow_int32(tmp_path):
    # 520 inputs of int8 127 times int16 32768 exceed 2^31: the export must refuse
    checkpoint = make_checkpoint("classify", "rnn", embed=520, hidden=4, layers=1)
    checkpoint.state_dict["encoder.rnn.weight_ih_l0"].fill_(0.5)
    with pytest.raises(EdgeRNNError, match="beyond int32") as error:
        export_c(checkpoint, tmp_path, CExportConfig(integer_only=True, verify=False))
    assert "\n" not in str(error.value) and "layer0_fwd_ih" in str(error.value)
    assert not any(tmp_path.iterdir())
    checkpoint.state_dict["encoder.rnn.weight_ih_l0"][:, 260:] = 0.0  # half the row: it fits
    export_c(checkpoint, tmp_path, CExportConfig(integer_only=True, verify=False))


def test_integer_only_needs_int8_weights_and_refuses_seq2seq(tmp_path):
    with pytest.raises(EdgeRNNError, match="drop --no-int8"):
        CExportConfig(precision="fp32", integer_only=True)
    checkpoint = make_checkpoint("seq2seq", "gru")
    with pytest.raises(EdgeRNNError, match="integer-only C target does not support seq2seq"):
        export_c(checkpoint, tmp_path, CExportConfig(integer_only=True))


def test_cmodule_scores_the_c_code_and_timing_runs_it(tmp_path):
    needs_compiler()
    checkpoint, binary = _built("regress", "lstm", 2, False, "integer")
    sequences = _sequences(checkpoint)
    norm = checkpoint.meta.norm
    inputs = torch.zeros(len(sequences), max(LENGTHS), checkpoint.spec.input_size)
    for row, frames in enumerate(sequences):
        inputs[row, : len(frames)] = torch.from_numpy(normalize_x(frames, norm))
    lengths = torch.tensor([len(s) for s in sequences])
    with torch.no_grad():
        wanted = int8_reference(checkpoint.build())(inputs, lengths).numpy()
    got = CModule(binary, checkpoint)(inputs, lengths).numpy()  # normalized, as evaluate wants
    assert float(np.abs(got - wanted).max()) <= INTEGER_ATOL
    bench = build_bench(binary.with_suffix(""), "o2")
    assert c_latency_ms(bench, sequences) > 0


def test_cli_target_c_integer_only(tmp_path):
    needs_compiler()
    path = save_checkpoint(make_checkpoint("tag", "rnn"), tmp_path / "model.pt")
    out = tmp_path / "c"
    command = ["export", str(path), "--target", "c", "--integer-only", "-o", str(out), "--json"]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output.strip().splitlines()[-1])
    assert payload["integer_only"] and payload["parity"]["steps_equal_run"]
    assert "int8, integer-only: flash" in result.output
    refused = CliRunner().invoke(main, ["export", str(path), "--integer-only", "-o", str(out)])
    assert refused.exit_code != 0 and "--integer-only applies to the C target" in refused.output
    refused = CliRunner().invoke(main, [*command, "--no-int8"])
    assert refused.exit_code != 0 and "drop --no-int8" in refused.output
