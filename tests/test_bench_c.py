"""The C target as a bench candidate, and in the compress report (``compress --with-c``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_cli
from export_cases import make_checkpoint

from edgernn.bench import BenchConfig, TimingConfig, bench, candidates_from_paths
from edgernn.c import CExportConfig, export_c
from edgernn.c.compiler import find_compiler
from edgernn.c.library import CLibrary
from edgernn.c.seq2seq_weights import seq2seq_int8_reference
from edgernn.c.verify import random_sequences, reference_outputs
from edgernn.c.weights import int8_reference
from edgernn.report.schema import schema_problems

pytestmark = pytest.mark.skipif(find_compiler() is None, reason="no C compiler (cc) on PATH")
FAST = TimingConfig(warmup=1, min_iters=3, min_time_s=0.0, max_time_s=0.2)


def _exported(tmp_path, task, cell="lstm", bidirectional=False, **config):
    checkpoint = make_checkpoint(task, cell, bidirectional)
    folder = tmp_path / f"{task}-c"
    result = export_c(checkpoint, folder, CExportConfig(**config))
    return checkpoint, folder, result


@pytest.mark.parametrize("task", ["tag", "regress"])
def test_the_library_computes_what_pytorch_does_run_and_step(tmp_path, task):
    checkpoint, folder, _ = _exported(tmp_path, task)
    library = CLibrary(folder, tmp_path)
    frames = random_sequences(checkpoint.spec, checkpoint.meta.norm, (7,))[0]
    model = int8_reference(checkpoint.build())
    (wanted,) = reference_outputs(model, [frames], checkpoint.meta.norm)
    got = library.run(frames)
    assert np.allclose(got, wanted, atol=1e-4)
    step, last = library.stepper(frames)
    step()  # a stream of the same frames ends where the whole run does
    assert np.allclose(last, got[-len(last) :], atol=1e-5)


def test_bench_times_a_c_export_at_batch_one_with_its_flash_and_ram(tmp_path):
    checkpoint, folder, result = _exported(tmp_path, "lm", cell="gru")
    candidates = candidates_from_paths([str(folder)])
    assert [(c.format, c.precision, c.task) for c in candidates] == [("c", "int8", "lm")]
    config = BenchConfig(batch_sizes=(1, 4), seq_lens=(3, 9), timing=FAST, progress=False)
    report = bench(candidates, config)
    assert schema_problems(report) == []
    (row,) = report["models"]
    assert row["size_bytes"] == row["flash_bytes"] == result["flash_bytes"]
    assert row["ram_bytes"] == result["ram_bytes"] and row["params"] == result["weights"]
    grid = sorted((e["batch"], e["seq_len"]) for e in row["latency"] if not e.get("stream"))
    assert grid == [(1, 3), (1, 9)]  # the C API has no batch: batch 1 only
    assert [e["batch"] for e in row["latency"] if e.get("stream")] == [1]  # edgernn_step
    assert any("C rows" in note for note in report["notes"])


def test_a_bidirectional_export_has_no_stream_row(tmp_path):
    _, folder, _ = _exported(tmp_path, "classify", bidirectional=True, precision="fp32")
    config = BenchConfig(batch_sizes=(1,), seq_lens=(5,), timing=FAST, progress=False)
    (row,) = bench(candidates_from_paths([str(folder)]), config)["models"]
    assert row["precision"] == "fp32" and not any(e.get("stream") for e in row["latency"])


def test_a_seq2seq_export_translates_as_pytorch_greedy_does(tmp_path):
    checkpoint, folder, _ = _exported(tmp_path, "seq2seq", cell="gru")
    library = CLibrary(folder, tmp_path)
    model = seq2seq_int8_reference(checkpoint.build())
    source = np.array([5, 7, 9, 6, 8], np.int32)
    with torch.no_grad():
        (wanted,) = model.greedy(torch.from_numpy(source.astype(np.int64))[None], torch.tensor([5]))
    assert library.run(source).tolist() == list(wanted)


def test_compress_with_c_reports_the_c_target_beside_the_graphs(tmp_path, teacher):
    out = tmp_path / "bundle"
    flags = ["compress", str(teacher), "--epochs", "1", "--quiet", "-o", str(out)]
    result = run_cli(*flags, "--with-c")
    assert result.exit_code == 0, result.output
    assert (out / "c" / "model.c").is_file() and (out / "c" / "model.h").is_file()
    rows = json.loads((out / "report.json").read_text())["models"]
    (c_row,) = [row for row in rows if row["format"] == "c"]
    graph = next(r for r in rows if r["name"].startswith("model.int8.onnx"))
    assert c_row["role"] == "final" and c_row["metric"] is not None
    assert abs(c_row["metric"] - graph["metric"]) <= 1.0  # the same int8 model, in C
    assert c_row["ram_bytes"] > 0 and c_row["latency"]
    assert rows[-1]["format"] == "onnx"  # the headline ratios stay the bundle's graphs'
    # Without --with-c the bundle has no C target: an older one would not match it.
    assert run_cli(*flags).exit_code == 0
    assert not (out / "c").exists()


def test_with_c_needs_the_bundle(tmp_path, teacher):
    result = run_cli("compress", str(teacher), "--no-export", "--with-c", "-o", str(tmp_path / "b"))
    assert result.exit_code != 0 and "drop --no-export" in result.output


def test_a_streaming_lm_in_c_generates_the_runtimes_text(tmp_path):
    from edgernn.export import ExportConfig, export_bundle
    from edgernn.runtime import Runtime

    checkpoint = make_checkpoint("lm", "gru", False, layers=1)
    export_bundle(checkpoint, tmp_path / "bundle", config=ExportConfig(int8=False))
    runtime = Runtime(tmp_path / "bundle", precision="fp32")
    export_c(checkpoint, tmp_path / "c", CExportConfig(precision="fp32"))
    library = CLibrary(tmp_path / "c", tmp_path)
    prefix = "ab"
    wanted = runtime.generate(prefix, 30, temperature=0)
    ids = library.generate(runtime.codec.ids(prefix), 30)
    assert runtime.codec.text(ids, "vocab") == wanted


def test_a_student_the_c_target_cannot_write_still_gets_its_bundle(tmp_path, teacher):
    out = tmp_path / "bundle"
    flags = ["compress", str(teacher), "--epochs", "1", "--student-embed", "4", "--embed-rank", "2"]
    result = run_cli(*flags, "--quiet", "--with-c", "-o", str(out))
    assert result.exit_code == 0, result.output
    notes = json.loads((out / "report.json").read_text())["notes"]
    assert any(n.startswith("--with-c: no C target written") and "low-rank" in n for n in notes)
    assert (out / "model.onnx").is_file() and not (out / "c").exists()


def test_compress_with_c_scores_a_seq2seq_student_by_its_greedy_translations(tmp_path, seq2seq_tsv):
    from edgernn.checkpoint import save_checkpoint
    from edgernn.config import TrainConfig
    from edgernn.train import train

    quick = TrainConfig(epochs=2, batch_size=16, progress=False)
    teacher = train(str(seq2seq_tsv), "seq2seq", quick, hidden=16, embed=8)
    path = save_checkpoint(teacher, tmp_path / "teacher.pt")
    out = tmp_path / "bundle"
    result = run_cli("compress", str(path), "--epochs", "1", "--quiet", "--with-c", "-o", str(out))
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "report.json").read_text())["models"]
    (c_row,) = [row for row in rows if row["format"] == "c"]
    assert set(c_row["metrics"]) == {"exact_match", "token_accuracy", "bleu"}
    assert c_row["latency"] and (out / "c" / "model.h").is_file()


def test_a_damaged_c_folder_is_one_clear_line(tmp_path):
    from edgernn.errors import EdgeRNNError

    _, folder, _ = _exported(tmp_path, "classify")
    header = (folder / "model.h").read_text()
    (folder / "model.h").write_text(header.replace("#define EDGERNN_TOKENS", "#define X"))
    with pytest.raises(EdgeRNNError, match="lacks EDGERNN_TOKENS"):
        candidates_from_paths([str(folder)])
    (folder / "model.h").write_text(header)
    (folder / "model.c").write_text((folder / "model.c").read_text() + "int broken(\n")
    config = BenchConfig(batch_sizes=(1,), seq_lens=(3,), timing=FAST, progress=False)
    with pytest.raises(EdgeRNNError, match="model.c does not build: .*error") as raised:
        bench(candidates_from_paths([str(folder)]), config)
    assert "\n" not in str(raised.value)
