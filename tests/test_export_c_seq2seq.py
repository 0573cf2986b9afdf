"""The C target for seq2seq: the generated C99 computes PyTorch's logits and greedy ids, and
refuses by status, never by overflow, what does not fit its compile-time buffers."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from c_cases import module_scratch, needs_compiler
from click.testing import CliRunner
from export_cases import make_checkpoint

from edgernn.c import CExportConfig, export_c, seq2seq_verify
from edgernn.c.harness import CFLAGS, STRICT, find_compiler
from edgernn.c.seq2seq_verify import Case, compile_seq2seq_harness, run_seq2seq_harness
from edgernn.c.seq2seq_weights import seq2seq_int8_reference
from edgernn.checkpoint import save_checkpoint
from edgernn.cli import main
from edgernn.data.vocab import BOS_ID
from edgernn.errors import EdgeRNNError

# (attention, cell, layers, bidirectional): both attentions with every cell, both
# directions, one and two layers.
MODELS = [
    ("bahdanau", "lstm", 2, True),
    ("bahdanau", "gru", 1, False),
    ("bahdanau", "rnn", 1, True),
    ("luong", "gru", 2, True),
    ("luong", "lstm", 1, False),
    ("luong", "rnn", 2, False),
]
MAX_LEN = 12  # the spec's max_len: the longest source the C buffers hold
ATOL = 1e-5  # float rounding: the int8 code computes its dequantized rows exactly
INT8_VS_FP32 = 0.02  # what int8 rows may move these logits (see test_export_c.INT8_VS_FP32)

_ROOT, _cleanup = module_scratch("edgernn-c-s2s-tests-")


def _checkpoint(attention, cell, layers, bidirectional):
    overrides = {"attention": attention, "layers": layers, "max_len": MAX_LEN}
    return make_checkpoint("seq2seq", cell, bidirectional, **overrides)


@functools.cache
def _built(attention, cell, layers, bidirectional, precision):
    """``(checkpoint, folder, binary)``: exported unverified (these tests check it), compiled."""
    checkpoint = _checkpoint(attention, cell, layers, bidirectional)
    folder = _ROOT / f"{attention}-{cell}-{layers}-{bidirectional}-{precision}"
    export_c(checkpoint, folder, CExportConfig(precision=precision, verify=False))
    return checkpoint, folder, compile_seq2seq_harness(folder, folder.with_suffix(".bin"))


def _model(checkpoint, int8: bool):
    model = checkpoint.build().eval()
    return seq2seq_int8_reference(model) if int8 else model


def _cases(spec, seed: int, max_out: int | None = None) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for src_len, tgt_len in ((1, 3), (4, 1), (9, 7), (MAX_LEN, 5), (6, 12)):
        src = rng.integers(0, spec.vocab_size, size=src_len).astype(np.int32)
        tgt = rng.integers(4, spec.num_outputs, size=tgt_len).astype(np.int32)
        tgt[0] = BOS_ID
        cases.append(Case(src, tgt, 2 * src_len + 10 if max_out is None else max_out))
    return cases


def _padded(cases: list[Case], field: str) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [getattr(case, field) for case in cases]
    lengths = torch.tensor([len(row) for row in rows])
    batch = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
    for i, row in enumerate(rows):
        batch[i, : len(row)] = torch.from_numpy(row.astype(np.int64))
    return batch, lengths


def _torch_logits(model, cases: list[Case]) -> list[np.ndarray]:
    # One padded batch: padding must not change a result (the C code never sees any).
    src, src_lengths = _padded(cases, "src")
    tgt, tgt_lengths = _padded(cases, "tgt_in")
    with torch.no_grad():
        logits = model(src, src_lengths, tgt).numpy()
    return [logits[i, :n] for i, n in enumerate(tgt_lengths.tolist())]


def _torch_greedy(model, cases: list[Case], max_len: int | None = None) -> list[list[int]]:
    src, src_lengths = _padded(cases, "src")
    return model.greedy(src, src_lengths, max_len=max_len)


def _c_logits(results) -> list[np.ndarray]:
    assert all(r.encode_status == 0 and r.intact for r in results)
    return [np.stack(r.steps) for r in results]


def _max_diff(got, wanted) -> float:
    return max(float(np.abs(g - w).max()) for g, w in zip(got, wanted, strict=True))


@pytest.mark.parametrize("attention, cell, layers, bidirectional", MODELS)
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_teacher_forced_logits_match_pytorch(attention, cell, layers, bidirectional, precision):
    needs_compiler()
    checkpoint, _, binary = _built(attention, cell, layers, bidirectional, precision)
    cases = _cases(checkpoint.spec, seed=1)
    _, results = run_seq2seq_harness(binary, cases, checkpoint.spec.num_outputs)
    got = _c_logits(results)
    int8 = precision == "int8"
    assert _max_diff(got, _torch_logits(_model(checkpoint, int8), cases)) <= ATOL
    if int8:  # against fp32: moved (int8 was applied), but only by rounding the rows
        fp32 = _torch_logits(_model(checkpoint, False), cases)
        scale = max(1.0, max(float(np.abs(w).max()) for w in fp32))
        assert 0 < _max_diff(got, fp32) <= INT8_VS_FP32 * scale


@pytest.mark.parametrize("attention, cell, layers, bidirectional", MODELS)
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_greedy_ids_equal_pytorch_greedy(attention, cell, layers, bidirectional, precision):
    needs_compiler()
    checkpoint, _, binary = _built(attention, cell, layers, bidirectional, precision)
    model = _model(checkpoint, precision == "int8")
    cases = _cases(checkpoint.spec, seed=2)
    _, results = run_seq2seq_harness(binary, cases, checkpoint.spec.num_outputs)
    got = [r.ids for r in results]
    assert got == _torch_greedy(model, cases)
    assert [r.translated for r in results] == [len(ids) for ids in got]
    assert max(len(ids) for ids in got) > 1  # decoded tokens, not an immediate <eos>
    # A smaller max_out cuts the same search short, as PyTorch's max_len.
    short = _cases(checkpoint.spec, seed=2, max_out=2)
    _, cut = run_seq2seq_harness(binary, short, checkpoint.spec.num_outputs)
    assert [r.ids for r in cut] == _torch_greedy(model, cases, max_len=2)
    assert all(r.intact for r in cut)


def test_bad_sources_tokens_and_limits_are_refused_by_status():
    needs_compiler()
    checkpoint, _, binary = _built("luong", "gru", 2, True, "int8")
    spec = checkpoint.spec
    good, bos = np.array([4, 5, 6], np.int32), np.array([BOS_ID], np.int32)
    cases = [
        Case(good, bos, 16),
        Case(np.full(MAX_LEN + 1, 4, np.int32), bos, 16),  # one longer than the buffers
        Case(np.zeros(0, np.int32), bos, 16),
        Case(np.array([4, spec.vocab_size], np.int32), bos, 16),
        Case(np.array([-1], np.int32), bos, 16),
        Case(good, np.array([BOS_ID, spec.num_outputs, -1], np.int32), 16),
        Case(good, bos, -1),
        Case(good, bos, 0),
    ]
    first, results = run_seq2seq_harness(binary, cases, spec.num_outputs)
    assert first == -3  # EDGERNN_ERR_NO_SOURCE: a step before any source
    assert [r.encode_status for r in results] == [0, -1, -1, -2, -2, 0, 0, 0]
    decoded = results[0].translated
    assert decoded >= 0 and [r.translated for r in results] == [
        decoded,
        -1,
        -1,
        -2,
        -2,
        decoded,
        -1,
        0,
    ]
    statuses = [s if isinstance(s, int) else 0 for s in results[5].steps]
    assert statuses == [0, -2, -2]  # EDGERNN_ERR_TOKEN for a target id outside tgt_vocab
    assert all(r.intact for r in results)


def _asan_harness(folder: Path, work: Path, model_c: str | None = None) -> Path:
    """The harness under ASan + UBSan, of ``folder``'s model or of ``model_c`` beside its header."""
    if model_c is not None:
        work.mkdir()
        shutil.copy(folder / "model.h", work / "model.h")
        (work / "model.c").write_text(model_c)
        folder = work
    flags = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g")
    try:
        return compile_seq2seq_harness(folder, work.with_suffix(".asan"), flags)
    except EdgeRNNError as error:
        pytest.skip(f"no sanitizer runtime for the host cc: {error}")


@pytest.mark.parametrize("attention, cell", [("bahdanau", "lstm"), ("luong", "gru")])
def test_sanitizers_find_nothing_on_valid_and_refused_inputs(attention, cell, tmp_path):
    needs_compiler()
    checkpoint, folder, _ = _built(attention, cell, 2, True, "int8")
    spec = checkpoint.spec
    bos = np.array([BOS_ID], np.int32)
    cases = _cases(spec, seed=3) + [
        Case(np.full(MAX_LEN + 1, 4, np.int32), bos, 4),
        Case(np.array([spec.vocab_size], np.int32), bos, 4),
        Case(np.array([4, 5], np.int32), np.array([BOS_ID, spec.num_outputs]), 1),
    ]
    binary = _asan_harness(folder, tmp_path / "asan")
    _, results = run_seq2seq_harness(binary, cases, spec.num_outputs)  # raises on a report
    assert (
        _max_diff(_c_logits(results[:5]), _torch_logits(_model(checkpoint, True), cases[:5]))
        <= ATOL
    )
    assert [r.encode_status for r in results[5:]] == [-1, -2, 0]


# Each protection, and what the model.c without it does on the case it guards against.
_REMOVED = {
    "source length": ("src_len > EDGERNN_MAX_SRC_LEN", "src_len > EDGERNN_MAX_SRC_LEN + 64"),
    "source ids": ("src[t] >= EDGERNN_SRC_VOCAB", "src[t] >= EDGERNN_SRC_VOCAB + 64"),
    "max_out": ("limit = max_out < limit ? max_out : limit;", ""),
}


@pytest.mark.parametrize("protection", sorted(_REMOVED))
def test_each_protection_is_what_keeps_the_buffers_intact(protection, tmp_path):
    needs_compiler()
    checkpoint, folder, _ = _built("bahdanau", "lstm", 2, True, "fp32")
    spec = checkpoint.spec
    case = {
        "source length": Case(np.full(MAX_LEN + 3, 4, np.int32), np.array([BOS_ID], np.int32), 4),
        "source ids": Case(np.array([4, spec.vocab_size + 40], np.int32), np.array([BOS_ID]), 4),
        "max_out": Case(np.array([4, 5], np.int32), np.array([BOS_ID], np.int32), 1),
    }[protection]
    # With the protection: refused by status (or cut at max_out), under ASan and UBSan.
    guarded = _asan_harness(folder, tmp_path / "guarded")
    _, (result,) = run_seq2seq_harness(guarded, [case], spec.num_outputs)
    assert result.intact and (result.encode_status < 0 or len(result.ids) <= case.max_out)
    # Without it: the sanitizers (or the canary past out[max_out - 1]) catch the overflow.
    old, new = _REMOVED[protection]
    source = (folder / "model.c").read_text()
    assert source.count(old) == 1
    mutant = _asan_harness(folder, tmp_path / "mutant", source.replace(old, new))
    try:
        _, (result,) = run_seq2seq_harness(mutant, [case], spec.num_outputs)
    except EdgeRNNError:
        return  # the sanitizer stopped the harness
    assert not result.intact


def test_max_src_len_can_be_lowered_at_compile_time(tmp_path):
    needs_compiler()
    _, folder, _ = _built("luong", "lstm", 1, False, "fp32")
    binary = compile_seq2seq_harness(folder, tmp_path / "h", ("-DEDGERNN_MAX_SRC_LEN=4",))
    bos = np.array([BOS_ID], np.int32)
    cases = [Case(np.full(4, 5, np.int32), bos, 8), Case(np.full(5, 5, np.int32), bos, 8)]
    _, results = run_seq2seq_harness(binary, cases, 12)
    assert [r.encode_status for r in results] == [0, -1]


def test_stated_sizes_are_checked_by_the_compiler(tmp_path):
    needs_compiler()
    checkpoint = _checkpoint("bahdanau", "lstm", 2, True)
    result = export_c(checkpoint, tmp_path, CExportConfig(verify=False))
    header = (tmp_path / "model.h").read_text()
    compile_seq2seq_harness(tmp_path, tmp_path / "ok")
    assert f"#define EDGERNN_FLASH_BYTES {result['flash_bytes']}\n" in header
    assert result["ram_bytes"] == result["state_bytes"] + result["scratch_bytes"]
    for macro in ("EDGERNN_FLASH_BYTES", "EDGERNN_STATE_BYTES", "EDGERNN_SCRATCH_BYTES"):
        (tmp_path / "model.h").write_text(
            header.replace(f"#define {macro} ", f"#define {macro} 4 + ")
        )
        with pytest.raises(EdgeRNNError, match="does not compile"):
            compile_seq2seq_harness(tmp_path, tmp_path / "bad")


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_generated_code_is_clean_c99_with_no_libc_beyond_math(tmp_path, precision):
    needs_compiler()
    checkpoint, folder, _ = _built("bahdanau", "gru", 1, False, precision)
    source = (folder / "model.c").read_text() + (folder / "model.h").read_text()
    includes = {line.split()[1] for line in source.splitlines() if line.startswith("#include")}
    assert includes == {"<math.h>", '"model.h"', "<stddef.h>", "<stdint.h>", "<immintrin.h>"}
    assert "malloc(" not in source and "printf(" not in source
    for extra in ((), ("-mavx2", "-mfma")):
        command = [find_compiler(), *CFLAGS, *STRICT, *extra, "-c", str(folder / "model.c")]
        done = subprocess.run([*command, "-o", str(tmp_path / "model.o")], capture_output=True)
        assert done.returncode == 0, done.stderr.decode()
    assert json.loads((folder / "meta.json").read_text())["tgt_vocab"] == checkpoint.meta.tgt_vocab


def test_int8_weights_take_about_a_quarter_of_the_flash(tmp_path):
    checkpoint = make_checkpoint("seq2seq", "lstm", True, hidden=16, attention="bahdanau")
    fp32 = export_c(checkpoint, tmp_path / "a", CExportConfig("fp32", verify=False))
    int8 = export_c(checkpoint, tmp_path / "b", CExportConfig("int8", verify=False))
    assert fp32["flash_bytes"] >= 4 * fp32["weights"] == 4 * int8["weights"]
    assert int8["flash_bytes"] < 0.4 * fp32["flash_bytes"]
    assert fp32["ram_bytes"] == int8["ram_bytes"] > 0


def test_export_checks_itself_and_fails_on_a_difference(tmp_path, monkeypatch):
    needs_compiler()
    checkpoint = _checkpoint("luong", "gru", 1, True)
    result = export_c(checkpoint, tmp_path / "a")
    parity = result["parity"]
    assert parity["checked"] and parity["max_abs_diff"] <= ATOL
    assert parity["greedy_equal"] == parity["sources"] and parity["max_abs_diff_vs_fp32"] > 0
    original = seq2seq_verify.reference_logits
    monkeypatch.setattr(seq2seq_verify, "reference_logits", lambda m, c: original(m, c) + 1e-2)
    with pytest.raises(EdgeRNNError, match="differs from PyTorch"):
        export_c(checkpoint, tmp_path / "b")
    assert not (tmp_path / "b").exists()  # nothing written that did not pass


def test_integer_only_and_factored_embeddings_are_refused_in_one_line(tmp_path):
    if "integer_only" not in CExportConfig.__dataclass_fields__:
        pytest.skip("this CExportConfig has no integer-only option")
    config = CExportConfig(integer_only=True)
    with pytest.raises(EdgeRNNError, match="does not support seq2seq") as error:
        export_c(_checkpoint("luong", "gru", 1, False), tmp_path, config)
    assert "\n" not in str(error.value)
    with pytest.raises(EdgeRNNError, match="low-rank embedding"):
        export_c(make_checkpoint("seq2seq", "gru", embed_rank=3), tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "attention, cell, bidirectional, flags",
    [("bahdanau", "lstm", True, []), ("luong", "gru", False, ["--no-int8"])],
)
def test_cli_target_c(tmp_path, attention, cell, bidirectional, flags):
    needs_compiler()
    checkpoint = make_checkpoint("seq2seq", cell, bidirectional, attention=attention, max_len=16)
    path = save_checkpoint(checkpoint, tmp_path / "model.pt")
    out = tmp_path / "c"
    result = CliRunner().invoke(
        main, ["export", str(path), "--target", "c", *flags, "-o", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output.strip().splitlines()[-1])
    assert payload["precision"] == ("fp32" if flags else "int8")
    assert payload["parity"]["checked"] and payload["parity"]["greedy_equal"] == 4
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "meta.json", "model.c", "model.h"]
    assert "edgernn_translate" in (out / "README.md").read_text()
