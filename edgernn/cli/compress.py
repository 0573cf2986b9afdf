"""`edgernn compress`: distill, prune and quantize a teacher checkpoint."""

from __future__ import annotations

import contextlib
from dataclasses import fields
from pathlib import Path

import click

from edgernn.cli.base import DEVICE, SEED, Number, echo_json, main, require_device
from edgernn.cli.export import check_own_model_flags, echo_adoption
from edgernn.cli.own import OWN_MODEL_FLAGS, own_model_inputs, own_model_options, pop_own_flags
from edgernn.compress.config import EMBED_BITS, TOLERANCE_TEXT, CompressOptions
from edgernn.config import CELLS
from edgernn.distill.config import DEFAULT_AUGMENT, REGRESSION_MODES, SEQ2SEQ_MODES
from edgernn.prune.config import MODES as PRUNE_MODES
from edgernn.search.config import DEFAULT_TRIALS, OBJECTIVES

# Defaults are CompressOptions' (read from the stage configs); flag names are its field names.
AUGMENT_DEFAULT = ", ".join(f"{value:g} {task}" for task, value in DEFAULT_AUGMENT.items())


class Duration(click.ParamType):
    """A ``--time-budget``: 90s, 30m, 1.5h, or bare seconds."""

    name = "duration"

    def convert(self, value, param, ctx):
        from edgernn.errors import EdgeRNNError
        from edgernn.search.config import parse_duration

        if isinstance(value, float):
            return value
        try:
            return parse_duration(str(value))
        except EdgeRNNError as error:
            self.fail(str(error).removeprefix("--time-budget "), param, ctx)


@main.command("compress")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", help="DATA to distill, fine-tune and score on [default: the model's own].")
@click.option(
    "--student-hidden",
    type=click.IntRange(min=1),
    help="Student units per layer [default: widest within 1/4 of the teacher's parameters].",
)
@click.option("--student-embed", type=click.IntRange(min=1), help="[default: scaled with hidden]")
@click.option("--student-layers", type=click.IntRange(min=1), help="[default: the teacher's]")
@click.option("--student-cell", type=click.Choice(CELLS), help="[default: the teacher's]")
@click.option("--student-unidirectional", is_flag=True, help="One-way student of a bi teacher.")
@click.option(
    "--vocab-size",
    type=click.IntRange(min=5),
    help="The student keeps this many of the most frequent training tokens (reserved ones "
    "included); the rest read as <unk> [default: the teacher's vocabulary].",
)
@click.option(
    "--vocab-coverage",
    type=Number(0, 1, min_open=True),
    help="The student keeps as few tokens as cover this share of the training tokens, e.g. 0.98.",
)
@click.option(
    "--embed-rank",
    type=click.IntRange(min=1),
    help="Low-rank student embedding: a vocab x RANK table times a RANK x embed projection, "
    "started from the teacher's table by SVD [default: a full table].",
)
@click.option(
    "--embed-buckets",
    type=click.IntRange(min=3),
    help="Hashed student embedding: two tables of about N rows in all, whatever the vocabulary "
    "(token i: row i mod m of one plus row i mod m-1 of the other).",
)
@click.option(
    "--embed-bits",
    type=click.Choice(EMBED_BITS),
    default=CompressOptions.embed_bits,
    show_default=True,
    help="Bits per weight of embedding tables in the int8 ONNX graph; 4 needs ONNX Runtime's "
    "com.microsoft GatherBlockQuantized (the manifest names the version).",
)
@click.option(
    "--temperature",
    type=Number(min=0, min_open=True),
    default=CompressOptions.temperature,
    show_default=True,
    help="Softmax temperature of distillation.",
)
@click.option(
    "--alpha",
    type=Number(0, 1),
    default=CompressOptions.alpha,
    show_default=True,
    help="Weight of the teacher's outputs.",
)
@click.option(
    "--seq-kd",
    type=click.Choice(SEQ2SEQ_MODES),
    default=CompressOptions.seq_kd,
    show_default=True,
    help="seq2seq: per-step KD, training on the teacher's beams, or both.",
)
@click.option(
    "--hidden-match",
    type=Number(min=0),
    default=CompressOptions.hidden_match,
    show_default=True,
    help="Weight of hidden-state matching (0: off).",
)
@click.option(
    "--augment",
    type=Number(0, 1, max_open=True),
    help="Function matching: also match the teacher on perturbed inputs (noise std on "
    f"numbers, token replacement rate on text) [default: {AUGMENT_DEFAULT}, 0 otherwise].",
)
@click.option(
    "--regression-kd",
    type=click.Choice(REGRESSION_MODES),
    default=CompressOptions.regression_kd,
    show_default=True,
    help="regress: MSE to the teacher, or the teacher only as a bound.",
)
@click.option(
    "--prune",
    type=Number(0, 1, max_open=True),
    default=CompressOptions.prune,
    show_default=True,
    help="Fraction pruned: hidden units (structured) or weights (unstructured).",
)
@click.option(
    "--prune-mode",
    type=click.Choice(PRUNE_MODES),
    default=CompressOptions.prune_mode,
    show_default=True,
)
@click.option(
    "--sensitivity",
    type=Number(min=0, allow_inf=True),
    default=CompressOptions.sensitivity,
    show_default=True,
    help="Most metric one layer may lose to int8 (points, or percent relative for errors).",
)
@click.option(
    "--tolerance",
    type=Number(min=0, allow_inf=True),
    help="Most a pruned or int8 model may lose to the teacher on the valid split before the "
    f"stage is dropped [default: {TOLERANCE_TEXT} for perplexity/MSE; inf keeps all].",
)
@click.option("--no-distill", is_flag=True, help="Keep the teacher's architecture.")
@click.option("--no-prune", is_flag=True, help="Skip pruning.")
@click.option("--no-quantize", is_flag=True, help="Skip dynamic int8 quantization.")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=CompressOptions.epochs,
    show_default=True,
    help="Distillation epochs (upper bound; early stopping ends sooner).",
)
@click.option(
    "--lr",
    type=Number(min=0, min_open=True),
    default=CompressOptions.lr,
    show_default=True,
    help="Peak learning rate of distillation (one-cycle schedule).",
)
@click.option("--seed", type=SEED, default=CompressOptions.seed, show_default=True)
@DEVICE
@click.option(
    "--no-export", is_flag=True, help="Stop after student.pt: no ONNX bundle, no latency report."
)
@click.option(
    "--with-c",
    is_flag=True,
    help="Also export the C99 target into OUTDIR/c and report its flash and RAM bytes, test "
    "metric and batch-1 latency beside the ONNX graphs (needs a C compiler).",
)
@own_model_options
@click.option(
    "--search",
    is_flag=True,
    help="Search the student (cell, layers, direction, widths, pruning, int8) for the "
    "smallest artifact within --budget on the valid split; flags given above pin theirs.",
)
@click.option(
    "--objective",
    type=click.Choice(OBJECTIVES),
    default="size",
    show_default=True,
    help="--search minimises the shipped artifact's bytes (size), its multiply-accumulates "
    "per input (macs) or its int8 graph's batch-1 latency on this machine (latency).",
)
@click.option(
    "--budget",
    type=Number(min=0),
    help=f"--search: most valid-metric loss vs the teacher [default: {TOLERANCE_TEXT}].",
)
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    help=f"--search: finished trials the study should hold [default: {DEFAULT_TRIALS}, or "
    "none with --time-budget only].",
)
@click.option(
    "--time-budget",
    type=Duration(),
    help="--search: stop starting trials after this: 90s, 30m, 2h.",
)
@click.option(
    "--storage", help="--search: Optuna RDB URL of the study [default: sqlite:///OUTPUT/search.db]."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="--search: local worker processes on the study's storage.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of results.")
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Bundle directory."
)
def compress_command(model, data, device, no_export, with_c, quiet, as_json, output, **options):
    """Distill, prune and quantize a trained model; write student.pt and a report.

    With --search, the student is the smallest of an Optuna study within --budget.
    """
    search = _search_config(options)
    if with_c and no_export:
        raise click.UsageError("--with-c writes the C target into the bundle: drop --no-export")
    if with_c:
        from edgernn.c.compiler import find_compiler

        if find_compiler() is None:
            raise click.UsageError("--with-c needs a C compiler (cc, gcc or clang) on PATH")

    from edgernn import distributed
    from edgernn.compress.bundle import bundle_summary, publish_bundle
    from edgernn.compress.config import BundleReportConfig
    from edgernn.compress.precision import fp32_only_note
    from edgernn.compress.stages import compress
    from edgernn.errors import EdgeRNNError
    from edgernn.lock import folder_lock
    from edgernn.own.resolve import resolve_model, teacher_file
    from edgernn.paths import check_output_not_input, data_path

    inputs = [("MODEL", model), ("--data", data_path(data)), *own_model_inputs(options)]
    check_output_not_input(output, inputs, folder=True)
    own, axes = pop_own_flags(options)
    flags = CompressOptions(**{f.name: options.pop(f.name) for f in fields(CompressOptions)})
    config = flags.config(progress=not quiet and distributed.place().rank == 0)
    require_device(device)
    resolved = resolve_model(model, own)
    if resolved.seq2seq is not None:
        if data is None:
            raise EdgeRNNError(
                f"{resolved.not_adopted}: compress distills a student from it on --data (a "
                f"seq2seq dataset); or export it by parts with: edgernn export {model} [the "
                "same flags] -o BUNDLE"
            )
        resolved, config = _black_box_seq2seq(resolved, own, config, search)
    elif resolved.checkpoint is None and (data is None or own.task is None):
        if with_c:
            raise EdgeRNNError(
                "--with-c needs a model compress distills (give --data and --task); export "
                f"your model to C on its own with: edgernn export {model} --target c -o DIR"
            )
        return _compress_own(resolved, own, output, axes, quiet, as_json)
    elif resolved.checkpoint is None:
        resolved, config = _black_box(resolved, own, axes, config, search)
    else:
        check_own_model_flags(resolved.model, model, None, axes)
        echo_adoption(resolved, own)
    # Under torchrun every rank compresses (distillation and fine-tuning data-parallel, the
    # rest alike on each); rank 0 alone holds the lock and writes. Locked for the whole run;
    # the bundle is built aside and swapped in only when complete.
    with distributed.session(device) as here:
        if search is not None and here.world > 1:
            raise EdgeRNNError(
                "--search under torchrun: the search scales out by --workers and --storage "
                "(processes sharing one study), not by torchrun; run it as one process"
            )
        lock = folder_lock(output) if here.rank == 0 else contextlib.nullcontext()
        with lock, teacher_file(resolved, model) as reference:
            if search is None:
                result, section = compress(resolved.checkpoint, config, data, device), None
            else:
                result, section = _search(reference, output, search, flags, data, device, quiet)
            if here.rank > 0:
                return
            if here.world > 1:
                result.notes.append(DATA_PARALLEL.format(here.world))
            report = BundleReportConfig(progress=not quiet, c_target=with_c)
            black_box = getattr(resolved.checkpoint, "teacher", None)  # a BlackBoxCheckpoint's
            names = publish_bundle(
                result, output, reference, data, report, not no_export, black_box
            )
            if section is not None:
                section = _write_search(result, output, section)
    for row in result.rows:
        score = "not measured" if row.metric is None else f"{row.metric:.4f}"
        dropped = "" if row.kept else "  (not kept)"
        click.echo(
            f"{row.name:>8}: {row.precision}  params {row.params:,}  "
            f"size {row.size_bytes / 1024:.1f} KiB  {score}{dropped}"
        )
    for note in result.notes:
        click.echo(f"note: {note}")
    fp32_only = fp32_only_note(result.checkpoint.compression)
    if fp32_only and not no_export:  # the bundle's graphs follow the int8 decision above
        click.echo(f"note: {fp32_only}")
    click.echo(f"bundle: {output}")
    if as_json:
        search_summary = {} if section is None else {"search": section["chosen"]}
        echo_json(bundle_summary(result, output, names) | search_summary)


DATA_PARALLEL = "distillation and fine-tuning ran data-parallel on {} processes (torchrun)"
SEARCH_FLAGS = ("objective", "budget", "trials", "time_budget", "storage", "workers")
# A compress flag given with --search pins its dimension (edgernn.search.config.DIMENSIONS).
_PINS = {
    "student_hidden": "hidden",
    "student_embed": "embed",
    "student_layers": "layers",
    "student_cell": "cell",
    "prune": "prune",
    "vocab_coverage": "vocab",
    "embed_rank": "rank",
    "embed_bits": "embed_bits",
    "lr": "lr",
}


def _search_config(options: dict):
    """The ``SearchConfig`` of the --search flags (popped from ``options``), or None."""
    from click.core import ParameterSource

    from edgernn.errors import EdgeRNNError
    from edgernn.search.config import SearchConfig

    ctx = click.get_current_context()
    given = [
        name
        for name in SEARCH_FLAGS
        if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT
    ]
    values = {name: options.pop(name) for name in SEARCH_FLAGS}
    if not options.pop("search"):
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise EdgeRNNError(f"{flag} only applies with --search; add --search or drop it")
        return None
    # Trials keep every stage and judge the final model by --budget instead of --tolerance.
    clashes = {
        "--no-distill": (options["no_distill"], "the search is over students"),
        "--tolerance": (options["tolerance"] is not None, "the budget is --budget"),
    }
    for name, (given_with_search, why) in clashes.items():
        if given_with_search:
            raise EdgeRNNError(f"{name} does not go with --search ({why}); drop {name}")
    pinned = {
        dimension: options[flag]
        for flag, dimension in _PINS.items()
        if ctx.get_parameter_source(flag) is not ParameterSource.DEFAULT
    }
    if options["student_unidirectional"]:
        pinned["bidirectional"] = False
    if options["no_prune"]:
        pinned["prune"] = 0.0
    if options["no_quantize"]:
        pinned["int8"] = False
    if options["vocab_size"] is not None:  # a fixed size instead of a searched coverage
        pinned["vocab"] = None
    if options["embed_buckets"] is not None:  # a hashed table has no rank
        pinned["rank"] = 0
    trials = values["trials"]
    if trials is None and values["time_budget"] is None:
        trials = DEFAULT_TRIALS
    return SearchConfig(
        trials=trials,
        time_budget_s=values["time_budget"],
        objective=values["objective"],
        budget=values["budget"],
        storage=values["storage"],
        workers=values["workers"],
        pinned=pinned,
    )


def _search(reference, output, search, flags, data, device, quiet):
    from edgernn.search.run import search_compress
    from edgernn.search.summary import trial_line

    def echo(trial) -> None:
        if not quiet:
            click.echo(trial_line(trial))

    outcome = search_compress(str(reference), output, search, flags, data, device, echo)
    return outcome.result, outcome.section


def _write_search(result, output: str, section: dict) -> dict:
    from edgernn.search.summary import write_search_section

    student = [row for row in result.rows if row.kept][-1].size_bytes  # --no-export: student.pt
    section = write_search_section(Path(output) / "report.json", section, student)
    chosen = section["chosen"]
    if chosen is not None:
        # The shipped graphs' own score when the bundle has them, else PyTorch's.
        test = chosen.get("bundle_test_metric", chosen["test_metric"])
        drop = chosen.get("bundle_test_drop", chosen["test_drop"])
        verdict = "within" if chosen["within_budget_on_test"] else "MISSES"
        click.echo(
            f"search: trial {chosen['number']}: {chosen['measured_bytes'] / 1024:.1f} KiB "
            f"shipped ({chosen['precision']}), test {section['metric']} {test:.4f}: loses "
            f"{drop:.3g} {section['budget_unit']} to the teacher, {verdict} the budget "
            f"{section['budget']:g}"
        )
    return section


# What your own model kept as it is may be given: everything else trains or scores.
OWN_MODEL_OPTIONS = {"model", "output", "quiet", "as_json", *OWN_MODEL_FLAGS}
OWN_MODEL_OPTIONS |= {"no_distill", "no_prune", "no_quantize"}


def _black_box(resolved, own, axes: dict, config, search):
    """``resolved``'s own model as a black-box teacher, and ``config`` as one allows."""
    from edgernn.errors import EdgeRNNError
    from edgernn.own.blackbox import black_box_config
    from edgernn.own.resolve import black_box

    if search is not None:
        raise EdgeRNNError(
            f"{resolved.not_adopted}; --search does not take a black-box teacher yet: drop "
            "--search and size the student with --student-hidden/--student-cell"
        )
    config, notes = black_box_config(config, own.task)
    resolved = black_box(resolved, own, axes)
    resolved.checkpoint.compression["black_box"]["notes"] = notes  # into the report's notes
    click.echo(f"note: {resolved.not_adopted}; it is used as a black-box teacher on --data")
    return resolved, config


def _black_box_seq2seq(resolved, own, config, search):
    """``resolved``'s seq2seq parts as a black-box teacher, and ``config`` as one allows."""
    from edgernn.errors import EdgeRNNError
    from edgernn.own.blackbox import black_box_config
    from edgernn.own.blackbox_seq2seq import black_box_seq2seq_checkpoint
    from edgernn.own.resolve import Resolved
    from edgernn.own.vocab import read_json_mapping

    if search is not None:
        raise EdgeRNNError(
            f"{resolved.not_adopted}; --search does not take a black-box teacher yet: drop "
            "--search and size the student with --student-hidden/--student-cell"
        )
    config, notes = black_box_config(config, "seq2seq")
    vocab = read_json_mapping(own.vocab, "vocab") if own.vocab else None
    teacher = black_box_seq2seq_checkpoint(resolved.model, resolved.seq2seq, vocab, own.tokens)
    teacher.compression["black_box"]["notes"] = notes  # into the report's notes
    parts = " + ".join(resolved.seq2seq.names)
    click.echo(f"note: a seq2seq model ({parts}): its parts are a black-box teacher on --data")
    return Resolved(teacher, not_adopted=resolved.not_adopted), config


def _compress_own(resolved, own, output: str, axes: dict, quiet: bool, as_json: bool) -> None:
    """Your own model, not adopted: dynamic int8 and the export, then a report."""
    from click.core import ParameterSource

    from edgernn.bundle.staging import staged_folder
    from edgernn.compress.finish import BundleReportConfig
    from edgernn.compress.own import compress_own, summary_lines, summary_ratios
    from edgernn.errors import EdgeRNNError
    from edgernn.export import ExportConfig
    from edgernn.lock import folder_lock

    ctx = click.get_current_context()
    given = [
        param.opts[0]
        for param in ctx.command.params
        if param.name not in OWN_MODEL_OPTIONS
        and ctx.get_parameter_source(param.name) is not ParameterSource.DEFAULT
    ]
    if given:
        raise EdgeRNNError(
            f"{resolved.not_adopted}; kept as it is, compress runs only dynamic int8 and the "
            f"export on it: drop {', '.join(given)}, or give --data and --task to distill a "
            "student from it as a black-box teacher"
        )
    model = resolved.model
    echo_adoption(resolved, own)
    config = ExportConfig(int8=not ctx.params["no_quantize"])
    with folder_lock(output), staged_folder(output) as staging:
        report = compress_own(model, staging, config, axes, BundleReportConfig(progress=not quiet))
        names = sorted(path.name for path in staging.iterdir() if path.is_file())
    for line in summary_lines(report):
        click.echo(line)
    click.echo(f"bundle: {output}")
    if as_json:
        files = {name: str(Path(output) / name) for name in names}
        summary = {"bundle": str(output), "files": files, "metrics": {}, "teacher_metrics": {}}
        echo_json(summary | {"ratios": summary_ratios(report)})
