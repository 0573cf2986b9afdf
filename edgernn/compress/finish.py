"""Finish a compressed model into a device bundle: ONNX export, then a measured report.

``compress`` gives the per-stage rows in memory; this writes ``student.pt``, adds the
verified ONNX graphs (fp32, and int8 when compress kept it: ``edgernn.compress.precision``)
and times the teacher against the final graphs side by side, so the bundle carries the whole
DESIGN.md set: manifest, ONNX files, student.pt, report.{json,md,html}.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

from edgernn.bench import BenchConfig, TimingConfig, bench, candidates_from_paths
from edgernn.compress.config import BundleReportConfig
from edgernn.compress.precision import embed_bits, fp32_only_note, ships_int8
from edgernn.compress.stages import (
    Compressed,
    adopted_source,
    black_box_teacher,
    report_paths,
    report_rows,
    save_student,
)
from edgernn.errors import EdgeRNNError
from edgernn.export import ExportConfig, export_bundle
from edgernn.report.schema import write_report

BLACK_BOX_TIMING = (
    "the black-box teacher (your model) is timed through its own forward in the compress "
    "process, on random inputs of the grid's sizes: its latency is measured, its memory is not "
    "(the bench workers, which measure memory, load edgernn models only)"
)


def finish_bundle(
    result: Compressed,
    outdir: str | Path,
    teacher_file: str | Path,
    data: str | None = None,
    config: BundleReportConfig | None = None,
    black_box=None,
) -> dict[str, Path]:
    """Write ``result`` into ``outdir`` as a bundle: student.pt, ONNX graphs, timed report.

    Args:
        result: from ``compress``.
        outdir: the bundle directory (``edgernn.compress.bundle`` passes a staging folder).
        teacher_file: the teacher checkpoint, measured as the reference row.
        data: DATA for scoring the graphs; default: the data recorded in the checkpoint.
        config: the latency grid.
        black_box: the ``BlackBoxTeacher`` a black-box compress distilled from, timed in this
            process over the same grid (the bench workers cannot load the user's module);
            None leaves that teacher's row untimed.

    Returns:
        File role (``student``, ``report``, ``report_md``, ``report_html``) -> path.

    Example::

        finish_bundle(compress(teacher), "runs/bundle", "runs/teacher.pt")
    """
    config = config or BundleReportConfig()
    outdir = Path(outdir)
    student = save_student(result, outdir)
    # The PyTorch int8 decision is the ONNX one: no int8 graphs of an int8 compress dropped.
    record = result.checkpoint.compression
    export = ExportConfig(int8=ships_int8(record), embed_bits=embed_bits(record))
    export_bundle(result.checkpoint, outdir, data=data, config=export)
    # The graphs go by file name alone: the folder may be a staging folder, published later.
    # A black-box teacher is the user's own module, which the bench workers cannot load.
    untimed = black_box_teacher(result)
    timed = [str(outdir)] if untimed else [str(teacher_file), str(outdir)]
    candidates = [
        replace(c, name=c.name.removeprefix(f"{outdir.name}/"))
        for c in candidates_from_paths(timed)
        if c.role != "teacher" or c.precision == "fp32"
    ]
    timing = TimingConfig(min_time_s=config.min_time_s, max_time_s=max(2.0, config.min_time_s))
    bench_config = BenchConfig(
        batch_sizes=config.batch_sizes,
        seq_lens=config.seq_lens,
        threads=config.threads,
        data=data or result.checkpoint.meta.source or None,  # the teacher's data
        timing=timing,
        progress=config.progress,
    )
    c_folder, c_note = _export_c(result, outdir) if config.c_target else (None, None)
    if c_folder is not None:
        candidates += candidates_from_paths([str(c_folder)])
    measured = bench(candidates, bench_config)
    if c_folder is not None:
        _score_c(measured, result, data)
    if c_note:
        measured.setdefault("notes", []).append(c_note)
    if untimed:
        row = _untimed_teacher(result, str(teacher_file))
        if black_box is not None:
            row = _time_black_box(row, black_box, bench_config)
            measured.setdefault("notes", []).append(BLACK_BOX_TIMING)
        measured["models"].insert(0, row)
    paths = write_report(_merge(measured, result, str(teacher_file)), outdir)
    return {"student": student} | report_paths(paths)


def _export_c(result: Compressed, outdir: Path) -> tuple[Path | None, str | None]:
    """The C target of the shipped model (int8 when the bundle ships int8) in ``outdir/c``,
    or, for a model the C target cannot write (a low-rank embedding a search chose, say),
    None and the note that says why: the bundle is still written."""
    from edgernn.c import CExportConfig, export_c

    precision = "int8" if ships_int8(result.checkpoint.compression) else "fp32"
    try:
        export_c(result.checkpoint, outdir / "c", CExportConfig(precision=precision))
    except EdgeRNNError as error:
        return None, f"--with-c: no C target written: {error}"
    return outdir / "c", None


def _score_c(measured: dict, result: Compressed, data: str | None) -> None:
    """The C row's test metric: the compiled harness scored by edgernn's own metric code."""
    import tempfile

    from edgernn.c.harness import compile_harness
    from edgernn.c.library import CLibrary
    from edgernn.c.score import CModule, CTranslator
    from edgernn.checkpoint import checkpoint_data
    from edgernn.evaluate import evaluate
    from edgernn.tasks import primary_metric

    (row,) = [row for row in measured["models"] if row["format"] == "c"]
    encoded, _ = checkpoint_data(result.checkpoint, data)
    if encoded is None:
        return
    checkpoint = result.checkpoint
    folder = Path(row["file"])
    with tempfile.TemporaryDirectory(prefix="edgernn-c-score-") as work:
        if checkpoint.spec.task == "seq2seq":  # greedy, through edgernn_translate
            model = CTranslator(CLibrary(folder, Path(work)))
        else:
            model = CModule(compile_harness(folder, Path(work) / "harness"), checkpoint)
        scores = evaluate(model, encoded.splits["test"], checkpoint.meta)
    row["metrics"], row["metric"] = scores, scores[primary_metric(checkpoint.spec.task)[0]]


def _merge(measured: dict, result: Compressed, teacher_file: str) -> dict:
    # Keep the compress stage rows (metric, params, size per stage) between the measured
    # teacher and the measured ONNX graphs (bench scored those through the runtime).
    teacher, *graphs = measured["models"]
    # seq2seq and lm: the teacher's own search, end to end (edgernn.bench.jobs), stays the
    # teacher's row beside it; the summary ratios divide the bundle's jobs by it.
    teacher_jobs = [row for row in graphs if row["role"] == "teacher"]
    graphs = [row for row in graphs if row["role"] != "teacher"]
    source = adopted_source(result)
    if source:  # timed through the adopted checkpoint, a temporary file: name the user's
        teacher |= {"file": source, "name": f"{Path(source).name} (adopted) torch fp32"}
        for row in teacher_jobs:
            row |= {"file": source, "name": f"{teacher['name']} {row['job']}"}
    # The final rows are the graphs the runtime loads by default: int8 when the bundle has
    # it, else fp32; the other precision's graphs are students on the way there.
    shipped = "int8" if ships_int8(result.checkpoint.compression) else "fp32"
    for row in graphs:
        row["role"] = "final" if row.get("precision") == shipped else "student"
        # The bundle's own files by name: the report stays true when the folder moves (and
        # the bundle is built in a staging folder before it is published).
        row["file"] = Path(row["file"]).name
        if row.get("job"):
            row["file"] = ""  # the whole bundle through the runtime: no one file of it
    stages = [row.to_dict() for row in report_rows(result, teacher_file)]
    student_rows = [_unmeasured(row) for row in stages if row["role"] != "teacher"]
    # The C target before the ONNX graphs: the headline ratios describe the last final row.
    c_rows = [row for row in graphs if row["format"] == "c"]
    graphs = [row for row in graphs if row["format"] != "c"]
    measured["models"] = [teacher, *teacher_jobs, *student_rows, *c_rows, *graphs]
    fp32_only = fp32_only_note(result.checkpoint.compression)
    notes = [*result.notes, *([fp32_only] if fp32_only else [])]
    measured["notes"] = notes + measured.get("notes", [])
    return measured


def _untimed_teacher(result: Compressed, teacher_file: str) -> dict:
    # The teacher's compress row (its metric through its own forward), beside timed graphs.
    row = _unmeasured(report_rows(result, teacher_file)[0].to_dict())
    name = f"{Path(teacher_file).name} (black box) torch fp32"
    return (
        row
        | {"name": name, "format": "torch", "runtime": "torch", "latency": []}
        | {
            "skipped": "not timed: your own model, used as a black-box teacher (the bench "
            "workers load edgernn checkpoints only)"
        }
    )


def _time_black_box(row: dict, teacher, config: BenchConfig) -> dict:
    """``row`` with the user's ``forward`` timed over the grid (uncached, random rows)."""
    from edgernn.bench.worker import time_grid
    from edgernn.own.blackbox import BlackBoxRunner

    request = {"device": "cpu", "timing": asdict(config.timing), "threads": config.threads}
    request |= {"batch_sizes": config.batch_sizes, "seq_lens": config.seq_lens}
    runner = BlackBoxRunner(teacher, config.seed)
    try:
        latency = time_grid(runner, request)
    finally:
        runner.close()
    timed = {key: value for key, value in row.items() if key != "skipped"}
    return timed | {"latency": latency}


def _unmeasured(row: dict) -> dict:
    # Intermediate stages are scored but not timed: only the teacher and the shipped graphs are.
    unmeasured = ("peak_rss_mb", "peak_rss_raw_mb", "peak_rss_baseline_mb", "load_ms")
    return dict.fromkeys(unmeasured) | row | {"skipped": "intermediate stage, not timed"}
