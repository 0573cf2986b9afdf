"""End-to-end rows: seq2seq and LM reports time the app's whole job, not one graph call.

A translation runs the encoder once and the decoder once per output token; a generation one
step per token. These tests check that the summary (Markdown table and report.json ratios)
quotes those jobs, so one decoder step can never be the headline again.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from export_cases import bundle, make_checkpoint

from edgernn.bench import BenchConfig, TimingConfig, bench, candidates_from_paths
from edgernn.bench.jobs import measure_jobs
from edgernn.checkpoint import save_checkpoint
from edgernn.recipe.parse import load_recipe
from edgernn.recipe.run import run_recipe
from edgernn.report import plots
from edgernn.report.compare import report_ratios, summary_entry
from edgernn.report.markdown import grid_rows, summary_rows
from edgernn.report.schema import (
    OPTIONAL_LATENCY_FIELDS,
    OPTIONAL_MODEL_FIELDS,
    latency_at,
    schema_problems,
    write_report,
)

FAST = TimingConfig(warmup=1, min_iters=3, min_time_s=0.0, max_time_s=0.2)
GRID = {"batch_sizes": (1,), "seq_lens": (8,), "timing": FAST, "progress": False}
JOB_TIMING = {"warmup": 0, "min_iters": 2, "min_time_s": 0.0, "max_time_s": 1.0, "max_iters": 4}


def _seq2seq():
    return bundle("seq2seq", "gru", False, attention="luong", exporter="torchscript")


def _lm():
    return bundle("lm", "gru", False, exporter="torchscript")


def _teacher(task: str, tmp_path):
    overrides = {"hidden": 8, "attention": "luong"} if task == "seq2seq" else {"hidden": 8}
    return save_checkpoint(make_checkpoint(task, "gru", **overrides), tmp_path / f"{task}.pt")


def _pick(candidates, *names: str):
    chosen = [c for c in candidates if any(c.name.endswith(name) for name in names)]
    assert len(chosen) == len(names), [c.name for c in candidates]
    return chosen


def _rows(report: dict) -> dict:
    return {row["name"].split("/")[-1]: row for row in report["models"]}


def test_checkpoints_and_bundles_of_seq2seq_and_lm_get_job_candidates(tmp_path):
    directory, _ = _seq2seq()
    found = candidates_from_paths([str(_teacher("seq2seq", tmp_path)), str(directory)])
    jobs = [(c.format, c.precision, c.job) for c in found if c.job]
    assert jobs == [
        ("torch", "fp32", "translate"),
        ("torch", "int8", "translate"),
        ("onnx", "fp32", "translate"),
        ("onnx", "int8", "translate"),
    ]
    # A bundle benched on its own is nobody's "final": compress names what it shipped.
    assert {c.role for c in found if c.format == "onnx"} == {"peer"}
    plain = candidates_from_paths([str(directory)], end_to_end=False)
    assert not any(c.job for c in plain)
    lm_jobs = [c.job for c in candidates_from_paths([str(_lm()[0])]) if c.job]
    assert lm_jobs == ["generate", "generate"]


@pytest.mark.parametrize("task", ["seq2seq", "lm"])
def test_the_runtime_and_the_teacher_do_the_same_job(task, tmp_path):
    # fp32 bundle and its own checkpoint: the same tokens, so the same count per input.
    directory, checkpoint = _seq2seq() if task == "seq2seq" else _lm()
    teacher = save_checkpoint(checkpoint, tmp_path / "teacher.pt")
    request = {"precision": "fp32", "device": "cpu", "timing": JOB_TIMING, "job": "x"}
    request |= {"job_inputs": [[4, 5, 6, 7, 8], [9, 10, 11]], "job_source": "two inputs"}
    runtime = measure_jobs(request | {"runtime": "onnxruntime", "path": str(directory)})
    torch = measure_jobs(request | {"runtime": "torch", "path": str(teacher)})
    labels = ["greedy", "beam 4"] if task == "seq2seq" else ["32 tokens, temperature 0"]
    for measured in (runtime, torch):
        assert [entry["job"] for entry in measured["latency"]] == labels
        for entry in measured["latency"]:
            assert entry["p50_ms"] > 0 and entry["tokens_per_s"] > 0
            assert 0 < entry["first_token_p50_ms"] < entry["p50_ms"]
            assert entry["batch"] is None and entry["seq_len"] is None and entry["threads"] == 1
    means = [[e["output_tokens_mean"] for e in m["latency"]] for m in (runtime, torch)]
    assert means[0] == means[1]


@pytest.mark.slow
def test_a_seq2seq_summary_is_a_whole_translation_never_one_step(tmp_path):
    directory, _ = _seq2seq()
    found = candidates_from_paths([str(_teacher("seq2seq", tmp_path)), str(directory)])
    picked = _pick(
        found,
        "torch fp32 translate",
        "encoder.onnx ort fp32",
        "decoder.onnx ort fp32",
        "Runtime.translate fp32",
    )
    report = bench(picked, BenchConfig(**GRID))
    assert schema_problems(report) == []
    rows, point = _rows(report), report["reference"]
    translate = rows["Runtime.translate fp32"]
    one_call = sum(
        latency_at(rows[name], point)["p50_ms"]
        for name in ("encoder.onnx ort fp32", "decoder.onnx ort fp32")
    )
    headline = summary_entry(translate, point)
    assert headline["job"] == "greedy" and headline["p50_ms"] > one_call
    assert [entry["job"] for entry in translate["latency"]] == ["greedy", "beam 4"]
    assert headline["first_token_p50_ms"] < headline["p50_ms"]

    ratios = report_ratios(report)
    assert ratios["reference"] == "seq2seq.pt torch fp32 translate"
    assert ratios["model"].endswith("Runtime.translate fp32")
    assert ratios["timed_as"] == "whole translation (greedy), per input"
    teacher_p50 = summary_entry(rows["seq2seq.pt torch fp32 translate"], point)["p50_ms"]
    assert ratios["p50_ms"] == pytest.approx(headline["p50_ms"] / teacher_p50)

    shown = {row["model"].split("/")[-1]: row for row in summary_rows(report)}
    assert shown["encoder.onnx ort fp32"]["timed as"] == "one call of the encoder graph"
    assert shown["encoder.onnx ort fp32"]["p50 x"] == "-"  # a fraction of a job: no ratio
    assert shown["Runtime.translate fp32"]["p50 x"] != "-"
    assert {row["timed as"] for row in grid_rows(report)} >= {
        "whole translation (beam 4), per input",
        "one call of the decoder graph",
    }
    paths = write_report(report, tmp_path / "report")
    markdown = paths["md"].read_text()
    assert "whole job per input" in markdown and "tokens/s" in markdown


@pytest.mark.slow
def test_an_lm_report_has_its_generation_and_a_streaming_step(tmp_path):
    directory, _ = _lm()
    found = candidates_from_paths([str(_teacher("lm", tmp_path)), str(directory)])
    picked = _pick(found, "torch fp32 generate", "step.onnx ort fp32", "Runtime.generate fp32")
    report = bench(picked, BenchConfig(**GRID, chunk_ms=10.0))
    assert schema_problems(report) == []
    rows = _rows(report)
    (generation,) = rows["Runtime.generate fp32"]["latency"]
    assert generation["job"] == "32 tokens, temperature 0"
    assert generation["output_tokens_mean"] == 32
    assert generation["tokens_per_s"] == pytest.approx(
        32 * generation["throughput_per_s"], rel=1e-6
    )
    assert 0 < generation["first_token_p50_ms"] < generation["p50_ms"]
    assert report_ratios(report)["tokens_per_s"] > 0
    streaming = [e for e in rows["step.onnx ort fp32"]["latency"] if e.get("stream")]
    assert [(e["batch"], e["seq_len"]) for e in streaming] == [(1, 8)]
    assert streaming[0]["real_time_factor"] == pytest.approx(streaming[0]["p50_ms"] / 10.0)


@pytest.mark.slow
def test_a_translate_recipe_reports_its_whole_translations(seq2seq_tsv, tmp_path):
    pipelines = Path(__file__).parent.parent / "pipelines"
    recipe = load_recipe(pipelines / "translate_bahdanau.toml").smoke(seq2seq_tsv)
    summary = run_recipe(recipe, tmp_path / "out", progress=False)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert schema_problems(report) == []
    roles = {row["name"]: row["role"] for row in report["models"]}
    assert roles["teacher.pt torch fp32 translate"] == "teacher"  # not a student of itself
    shipped = "int8" if any(name.endswith(".int8.onnx ort int8") for name in roles) else "fp32"
    assert roles[f"Runtime.translate {shipped}"] == "final"
    assert report["ratios"]["reference"] == "teacher.pt torch fp32 translate"
    assert report["ratios"]["model"] == f"Runtime.translate {shipped}"
    # run --json prints the same end-to-end ratio the report's summary shows.
    assert summary["ratios"]["p50_ms"] == pytest.approx(report["ratios"]["p50_ms"])
    assert summary["ratios"]["timed_as"] == "whole translation (greedy), per input"


def test_reports_before_job_rows_stay_valid_and_new_fields_are_checked():
    report = _report_with_jobs()
    assert schema_problems(report) == []
    old = copy.deepcopy(report)
    for row in old["models"]:
        for name in OPTIONAL_MODEL_FIELDS:
            row.pop(name, None)
        for entry in row["latency"]:
            for name in OPTIONAL_LATENCY_FIELDS:
                entry.pop(name, None)
    assert schema_problems(old) == []
    report["models"][1]["latency"][0]["tokens_per_s"] = "fast"
    assert schema_problems(report) == ["latency of 'bundle int8 translate': tokens_per_s is str"]


def test_plots_read_at_edge_scale():
    report = _report_with_jobs()
    for draw in (plots.metric_vs_latency, plots.metric_vs_size):
        assert draw(report)  # a PNG: job rows have a metric and a latency
    # The budget is the teacher's metric less the compress tolerance: 1 point here.
    assert plots._budget(report) == (89.0, "budget: teacher - 1 point")
    lower = copy.deepcopy(report) | {"metric": {"name": "cer", "higher_is_better": False}}
    assert plots._budget(lower)[0] == pytest.approx(90.0 * 1.02)


def _report_with_jobs() -> dict:
    """A measured-looking seq2seq report: a teacher job row, an int8 job row, one graph."""

    def entry(p50: float, job: str | None) -> dict:
        timed = {"device": "cpu", "threads": 1, "p50_ms": p50, "p90_ms": p50, "p99_ms": p50}
        timed |= {"throughput_per_s": 1000 / p50, "iterations": 5}
        if job is None:
            return timed | {"batch": 1, "seq_len": 8}
        extra = {"job": job, "tokens_per_s": 900.0, "first_token_p50_ms": p50 / 9}
        return timed | {"batch": None, "seq_len": None} | extra | {"first_token_p90_ms": p50}

    def row(name: str, role: str, p50: float, job: str | None, metric: float) -> dict:
        return {
            "name": name,
            "role": role,
            "format": "torch" if role == "teacher" else "onnx",
            "precision": "fp32" if role == "teacher" else "int8",
            "file": name,
            "size_bytes": 4096 if role == "teacher" else 1024,
            "params": 1000,
            "nonzero_params": 1000,
            "metric": metric,
            "peak_rss_mb": 1.0,
            "peak_rss_baseline_mb": 1.0,
            "graph": None if job else "decoder",
            "job": "translate" if job else None,
            "latency": [entry(p50, job)],
        }

    return {
        "schema": "edgernn.report/1",
        "task": "seq2seq",
        "environment": {"cpu": "x", "cores": 2, "gpu": None, "versions": {}, "git_sha": None},
        "metric": {"name": "exact_match", "higher_is_better": True},
        "reference": {"device": "cpu", "batch": 1, "seq_len": 8, "threads": 1},
        "models": [
            row("teacher.pt torch fp32 translate", "teacher", 9.0, "greedy", 90.0),
            row("bundle int8 translate", "final", 3.0, "greedy", 89.5),
            row("decoder.int8.onnx ort int8", "final", 0.03, None, 89.5),
        ],
        "notes": [],
    }
