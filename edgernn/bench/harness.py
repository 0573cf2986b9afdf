"""``bench``: measure candidates, each in its own fresh process, into one report dict."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict

from tqdm import tqdm

from edgernn.bench.config import BEAM, GENERATE_TOKENS, BenchConfig, Candidate
from edgernn.bench.realtime import (
    chunk_notes,
    covers_chunk,
    stream_steps,
    with_real_time_factor,
)
from edgernn.bench.spawn import run_worker
from edgernn.bench.stats import static_stats, task_metrics
from edgernn.errors import EdgeRNNError
from edgernn.report.environment import environment
from edgernn.report.schema import SCHEMA, reference_point

CPU_ONLY_INT8 = "int8 dynamic quantization runs on CPU only; not measured on cuda"
CPU_ONLY_RUNTIME = "edgernn.runtime runs bundles on CPU only; not measured on cuda"


def bench(candidates: Sequence[Candidate], config: BenchConfig) -> dict:
    """Measure every candidate and return the ``edgernn.report/1`` report.

    Each candidate runs in a fresh subprocess (see ``edgernn.bench.worker``); its peak memory
    is shown raw and minus an empty baseline process of the same runtime. A candidate that
    cannot run on ``config.device`` (int8 on cuda, ONNX Runtime without a CUDA provider)
    gets a row that says why, and no numbers. An ONNX file edgernn did not make, given an
    example, is timed at the example's shapes but for the axes ``candidate.axes`` varies;
    with ``config.chunk_ms``, streaming rows get their real-time factor (``realtime``).

    Args:
        candidates: the models, first one the reference for ratios.
        config: grid, device, timing and data for the task metric.

    Returns:
        The report as a plain dict (``write_report`` writes it as JSON, Markdown and HTML).

    Example::

        report = bench(candidates_from_paths(["teacher.pt"]), BenchConfig(seq_lens=(16, 64)))
        write_report(report, "runs/bench")
    """
    if not candidates:
        raise EdgeRNNError("nothing to benchmark: give at least one model")
    if config.device == "cuda":
        _require_cuda()
    task = _common_task(candidates)
    grid = len(config.batch_sizes) * len(config.seq_lens) * len(config.threads)
    rows, notes, baselines = [], _as_given_notes(candidates), {}
    notes += chunk_notes(list(candidates), config) + _job_notes(candidates) + _c_notes(candidates)
    total = grid * len(candidates)
    bar = tqdm(total=total, unit="point", file=sys.stderr, disable=not config.progress)
    with bar:
        for index, candidate in enumerate(candidates):
            bar.set_description(candidate.name)
            row = _describe(candidate, config)
            row["skipped"] = unavailable(candidate, config.device)
            if row["skipped"]:
                notes.append(f"{candidate.name}: {row['skipped']}")
            else:
                baseline = _baseline(candidate.runtime, config.device, baselines)
                row |= _measure(candidate, config, baseline, _advance(bar, index * grid, grid))
                row["latency"] = _real_time_factors(candidate, row["latency"], config)
            bar.n = (index + 1) * grid
            bar.refresh()
            rows.append(row)
    return _assemble(task, config, rows, notes)


def _as_given_notes(candidates: Sequence[Candidate]) -> list[str]:
    notes = []
    for candidate in candidates:
        if candidate.as_given:
            varied = sorted({r for roles in candidate.axes.values() for r in roles} - {"-"})
            how = f"only the {' and '.join(varied)} axes --axes names vary" if varied else "no grid"
            notes.append(f"{candidate.name}: timed at the --example's shapes ({how})")
    return notes


def _job_notes(candidates: Sequence[Candidate]) -> list[str]:
    if not any(candidate.job for candidate in candidates):
        return []
    return [
        "End-to-end rows (translate, generate) time the app's whole job, one input per call on "
        f"one thread: a translation greedy and beam {BEAM} (encoder once, decoder once per "
        f"token), a generation of {GENERATE_TOKENS} tokens at temperature 0; first token: "
        "encoder + first decoder step, or the prefix + the first token. Their inputs are in "
        "report.json (input_source). Rows of one graph call are a fraction of that job."
    ]


def _c_notes(candidates: Sequence[Candidate]) -> list[str]:
    if not any(candidate.format == "c" for candidate in candidates):
        return []
    return [
        "C rows: the export built with -O3 -march=native (this CPU) as a shared library, "
        "edgernn_run once per sequence at batch 1 (the C API has no batch) on one thread, "
        "through ctypes (about a microsecond a call); a streaming model's stream row is "
        "edgernn_step per frame; size is the flash bytes; memory is its fixed RAM "
        "(ram_bytes), not a process peak"
    ]


def _real_time_factors(candidate: Candidate, latency: list, config: BenchConfig) -> list:
    return [
        with_real_time_factor(entry, config.chunk_ms)
        if covers_chunk(candidate, entry, config)
        else entry
        for entry in latency
    ]


def unavailable(candidate: Candidate, device: str) -> str | None:
    """Why ``candidate`` cannot be measured on ``device``, or None when it can."""
    if device != "cuda":
        return None
    if candidate.format == "c":
        return "the C target runs on the CPU; not measured on cuda"
    if candidate.precision == "int8":
        return CPU_ONLY_INT8
    if candidate.job and candidate.format == "onnx":
        return CPU_ONLY_RUNTIME
    if candidate.format == "onnx":
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            return "the installed onnxruntime has no CUDAExecutionProvider; not measured on cuda"
    return None


def _require_cuda() -> None:
    import torch

    if not torch.cuda.is_available():
        raise EdgeRNNError("--device cuda: no CUDA GPU available here; use --device cpu")


def _common_task(candidates: Sequence[Candidate]) -> str | None:
    tasks = sorted({c.task for c in candidates if c.task})
    if len(tasks) > 1:
        raise EdgeRNNError(f"candidates are models of different tasks ({', '.join(tasks)})")
    return tasks[0] if tasks else None


def _describe(candidate: Candidate, config: BenchConfig) -> dict:
    row = {
        "name": candidate.name,
        "role": candidate.role,
        "format": candidate.format,
        "precision": candidate.precision,
        "runtime": candidate.runtime,
        "file": candidate.path,
        "graph": candidate.graph,
        "job": candidate.job,  # set: the app's whole job per input (edgernn.bench.jobs)
    } | static_stats(candidate)
    row |= dict.fromkeys(("peak_rss_mb", "peak_rss_raw_mb", "peak_rss_baseline_mb", "load_ms"))
    row["latency"] = []
    scores = task_metrics(candidate, config.data, config.device) if config.data else None
    row["metrics"] = scores
    row["metric"] = None
    if scores and candidate.task:
        from edgernn.tasks import primary_metric

        row["metric"] = scores[primary_metric(candidate.task)[0]]
    return row


def _baseline(runtime: str, device: str, cache: dict) -> float:
    if (runtime, device) not in cache:
        request = {"mode": "baseline", "runtime": runtime, "device": device}
        result = run_worker(request, f"empty {runtime} baseline")
        cache[runtime, device] = result["peak_rss_mb"]
    return cache[runtime, device]


def _measure(candidate: Candidate, config: BenchConfig, baseline: float, progress) -> dict:
    request = {
        "runtime": candidate.runtime,
        "path": candidate.path,
        "precision": candidate.precision,
        "example": candidate.example,
        "as_given": candidate.as_given,
        "axes": {name: list(roles) for name, roles in candidate.axes.items()},
        "device": config.device,
        "seed": config.seed,
        "batch_sizes": list(config.batch_sizes),
        "seq_lens": list(config.seq_lens),
        "threads": list(config.threads),
        "timing": asdict(config.timing),
    }
    if candidate.graph == "step":
        request["stream"] = {"steps": stream_steps(config), "states": _step_states(candidate)}
    if candidate.format == "c":  # a streaming C model carries its state in C (edgernn_step)
        request["stream"] = {"steps": stream_steps(config), "states": []}
    if candidate.job:
        from edgernn.bench.job_inputs import job_inputs

        request["job"] = candidate.job
        request["job_inputs"], request["job_source"] = job_inputs(candidate, config)
    result = run_worker(request, candidate.name, progress)
    raw = result.pop("peak_rss_raw_mb")
    return result | {
        "peak_rss_mb": raw - baseline,
        "peak_rss_raw_mb": raw,
        "peak_rss_baseline_mb": baseline,
    }


def _step_states(candidate: Candidate) -> list[dict]:
    # The manifest's state pairs: which output the next call takes as which input.
    from pathlib import Path

    from edgernn.bundle.manifest import read_manifest

    graph = Path(candidate.path)
    entries = read_manifest(graph.parent)["files"]
    (entry,) = [e for e in entries if (graph.parent / e["path"]).resolve() == graph.resolve()]
    return [{"input": s["input"], "output": s["output"]} for s in entry["states"]]


def _advance(bar: tqdm, start: int, span: int):
    def update(done: int, total: int) -> None:
        bar.n = start + round(span * done / max(total, 1))
        bar.refresh()

    return update


def _assemble(task: str | None, config: BenchConfig, rows: list, notes: list) -> dict:
    metric = {"name": None, "higher_is_better": None}
    if task:
        from edgernn.tasks import primary_metric

        name, higher = primary_metric(task)
        metric = {"name": name, "higher_is_better": higher}
    if config.data is None:
        notes.append("no --data given: task metrics not measured")
    elif any(row["format"] == "onnx" and row["metrics"] is None for row in rows):
        notes.append("ONNX files outside an edgernn bundle: no task to score them on")
    return {
        "schema": SCHEMA,
        "task": task,
        "environment": environment(config.device),
        "metric": metric,
        "config": config.to_dict(),
        "reference": reference_point(config),
        "models": rows,
        "notes": notes,
    }
