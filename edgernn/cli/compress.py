"""`edgernn compress`: distill, prune and quantize a teacher checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from edgernn.cli import DEVICE, echo_json, main, require_device
from edgernn.cli.export import check_own_model_flags, own_model_options
from edgernn.config import CELLS


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
    "--temperature",
    type=click.FloatRange(min=0, min_open=True),
    help="Softmax temperature of distillation [1].",
)
@click.option("--alpha", type=click.FloatRange(0, 1), help="Weight of the teacher's outputs [0.5].")
@click.option(
    "--seq-kd",
    "seq2seq",
    type=click.Choice(["word", "sequence", "both"]),
    help="seq2seq: per-step KD, training on the teacher's beams, or both [word].",
)
@click.option(
    "--hidden-match",
    "hidden_weight",
    type=click.FloatRange(min=0),
    help="Weight of hidden-state matching [1; 0: off].",
)
@click.option(
    "--augment",
    type=click.FloatRange(0, 1, max_open=True),
    help="Function matching: also match the teacher on perturbed inputs (noise std on "
    "numbers, token replacement rate on text) [0.3 regress, 0: off otherwise].",
)
@click.option(
    "--regression-kd",
    "regression",
    type=click.Choice(["mse", "bounded"]),
    help="regress: MSE to the teacher, or the teacher only as a bound [bounded].",
)
@click.option(
    "--prune",
    "prune_amount",
    type=click.FloatRange(0, 1, max_open=True),
    help="Fraction pruned: hidden units (structured) or weights (unstructured).",
)
@click.option(
    "--prune-mode",
    type=click.Choice(["structured", "unstructured"]),
    default="structured",
    show_default=True,
)
@click.option(
    "--sensitivity",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Most metric one layer may lose to int8 (points, or percent relative for errors).",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    help="Most a pruned or int8 model may lose to the teacher on the valid split before the "
    "stage is dropped [1 point; 2 percent relative for perplexity/MSE; inf keeps all].",
)
@click.option("--no-distill", is_flag=True, help="Keep the teacher's architecture.")
@click.option("--no-prune", is_flag=True, help="Skip pruning.")
@click.option("--no-quantize", is_flag=True, help="Skip dynamic int8 quantization.")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=40,
    show_default=True,
    help="Distillation epochs (upper bound; early stopping ends sooner).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@DEVICE
@click.option(
    "--no-export", is_flag=True, help="Stop after student.pt: no ONNX bundle, no latency report."
)
@own_model_options
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of results.")
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Bundle directory."
)
def compress_command(
    model, data, epochs, seed, device, no_export, quiet, as_json, output, **options
):
    """Distill, prune and quantize a trained model; write student.pt and a report."""

    from edgernn.bundle.staging import staged_folder
    from edgernn.compress.stages import compress, compress_config, write_compressed
    from edgernn.config import TrainConfig
    from edgernn.export.axes import parse_axes
    from edgernn.lock import folder_lock
    from edgernn.own.load import OwnModel, load_with_example

    foreign = {key: options.pop(key) for key in ("trust_pickle", "example", "axes")}
    distill_keys = ("temperature", "alpha", "seq2seq", "hidden_weight", "augment", "regression")
    distill_options = {key: options.pop(key) for key in distill_keys}
    train = TrainConfig(epochs=epochs, seed=seed, progress=not quiet)
    config = compress_config(distill_options=distill_options, train=train, **options)
    require_device(device)
    axes = parse_axes(foreign["axes"])
    teacher = load_with_example(model, foreign["trust_pickle"], foreign["example"])
    if isinstance(teacher, OwnModel):
        return _compress_own(teacher, output, axes, quiet, as_json)
    check_own_model_flags(teacher, model, None, axes)
    # Locked for the whole run; the bundle is built aside and swapped in only when complete.
    with folder_lock(output):
        result = compress(teacher, config, data, device)
        with staged_folder(output) as staging:
            write_compressed(result, staging, teacher_file=model)
            if not no_export:
                from edgernn.compress.finish import BundleReportConfig, finish_bundle

                finish_bundle(staging, model, data, BundleReportConfig(progress=not quiet))
            names = [path.name for path in staging.iterdir() if path.is_file()]
    files = {name: Path(output) / name for name in sorted(names)}
    for row in result.rows:
        score = "not measured" if row.metric is None else f"{row.metric:.4f}"
        dropped = "" if row.kept else "  (not kept)"
        click.echo(
            f"{row.name:>8}: {row.precision}  params {row.params:,}  "
            f"size {row.size_bytes / 1024:.1f} KiB  {score}{dropped}"
        )
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(f"bundle: {output}")
    if as_json:
        echo_json(_compress_summary(result, files))


def _compress_summary(result, files: dict) -> dict:
    teacher, final = result.rows[0], [row for row in result.rows if row.kept][-1]
    return {
        "bundle": str(files["student.pt"].parent),
        "files": {name: str(path) for name, path in files.items()},
        "metrics": final.metrics,
        "teacher_metrics": teacher.metrics,
        "ratios": {
            "params": final.params / teacher.params,
            "nonzero_params": final.nonzero_params / teacher.nonzero_params,
            "size": final.size_bytes / teacher.size_bytes,
        },
    }


# What a pickled module may be given: everything else trains or scores, which needs data.
OWN_MODEL_OPTIONS = {"model", "output", "trust_pickle", "example", "axes", "quiet", "as_json"}
OWN_MODEL_OPTIONS |= {"no_distill", "no_prune", "no_quantize"}


def _compress_own(model, output: str, axes: dict, quiet: bool, as_json: bool) -> None:
    """A pickled module: the data-free stage (dynamic int8) and the export, then a report."""
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
            f"{model.source} is a pickled module: compress runs only dynamic int8 and the "
            f"export on it (no data, so no distillation, pruning or scoring); drop "
            f"{', '.join(given)}"
        )
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
