"""`edgernn export` and `edgernn predict`: ONNX bundles and the torch-free runtime."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from edgernn.cli.base import SEED, Number, echo_json, echo_metrics, main
from edgernn.cli.own import own_model_inputs, own_model_options, pop_own_flags
from edgernn.errors import EdgeRNNError
from edgernn.export.config import EMBED_BITS, EXPORTERS, ExportConfig

TARGETS = ("onnx", "c")
# Flags of the ONNX bundle that the C target has no use for: given with --target c, refused.
_ONNX_ONLY = ("data", "per_channel", "batch_independent", "embed_bits", "no_eval", "exporter")
_ONNX_ONLY += ("int8_tolerance",)


@main.command("export")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Bundle directory."
)
@click.option(
    "--target",
    type=click.Choice(TARGETS),
    default=TARGETS[0],
    show_default=True,
    help="onnx: a verified ONNX bundle; c: dependency-free C99 (model.h, model.c, README.md) "
    "for microcontrollers, int8 weights unless --no-int8.",
)
@click.option("--data", help="DATA whose test split scores the graphs [default: the model's].")
@click.option(
    "--int8/--no-int8",
    default=None,
    help="Also write int8 graphs, or fp32 only [default: int8, unless the checkpoint is a "
    "compress student whose int8 was turned off or not kept].",
)
@click.option(
    "--per-channel",
    is_flag=True,
    help="int8 scales per output row in integer kernels and embedding tables too.",
)
@click.option(
    "--batch-independent",
    is_flag=True,
    help="int8 weights only, computed in float: results never depend on batch mates, "
    "padding or chunking (same size, fp32 speed; see README 'int8, batching and streaming').",
)
@click.option(
    "--embed-bits",
    type=click.Choice(EMBED_BITS),
    help="Bits per embedding-table weight in the int8 graphs: 4 stores 4-bit rows for "
    "embedding tables (64% of int8's bytes), needs ONNX Runtime >= 1.20 with the "
    "com.microsoft domain [default: what compress recorded in the checkpoint, else 8].",
)
@click.option("--no-eval", is_flag=True, help="Do not score the graphs on the test split.")
@click.option(
    "--exporter",
    type=click.Choice(EXPORTERS),
    default=ExportConfig.exporter,
    show_default=True,
    help="torch.onnx exporter tried first; the other one is the fallback.",
)
@click.option(
    "--int8-tolerance",
    type=Number(min=0, allow_inf=True),
    default=ExportConfig.int8_tolerance,
    show_default=True,
    help="Most metric one int8 node may cost on the valid split (points, or percent relative "
    "for perplexity/MSE) before it runs weight-only; inf keeps every node on integer kernels.",
)
@click.option(
    "--integer-only",
    is_flag=True,
    default=False,
    help="--target c only: no floating point at run time, for MCUs without an FPU (int8 "
    "weights with integer multipliers, int16 Q12 activations, fixed-point in and out).",
)
@own_model_options
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of results.")
def export_command(
    checkpoint,
    output,
    target,
    data,
    int8,
    per_channel,
    batch_independent,
    embed_bits,
    no_eval,
    exporter,
    int8_tolerance,
    integer_only,
    as_json,
    **own,
):
    """Export a checkpoint to an ONNX bundle (fp32 + int8), or to C99 with --target c,
    verified against PyTorch.

    CHECKPOINT may be your own nn.Module, with --example: saved with torch.save(model, path)
    (--trust-pickle, and --model-file for a script's classes), or as a state dict
    (--model-file, --model-class, --model-args). A model of a shape edgernn rebuilds is
    adopted (proved by parity) and exported like an edgernn checkpoint; any other gets a
    bundle with task "custom" (your input names, no metrics).
    """
    from edgernn.bundle.manifest import read_manifest
    from edgernn.bundle.staging import staged_folder
    from edgernn.export import export_bundle
    from edgernn.export.own import export_own
    from edgernn.lock import folder_lock
    from edgernn.own.resolve import resolve_model
    from edgernn.paths import check_output_not_input, data_path

    if integer_only and target != "c":
        raise EdgeRNNError("--integer-only applies to the C target; add --target c")
    inputs = [("CHECKPOINT", checkpoint), ("--data", data_path(data)), *own_model_inputs(own)]
    check_output_not_input(output, inputs, folder=True)
    config = ExportConfig(
        int8=int8 is not False,  # None (not given) follows the checkpoint, below
        per_channel=per_channel,
        int8_batch_independent=batch_independent,
        embed_bits=embed_bits or ExportConfig.embed_bits,
        evaluate=not no_eval,
        exporter=exporter,
        # inf: nothing to guard, so nothing is measured
        int8_tolerance=None if int8_tolerance == float("inf") else int8_tolerance,
    )
    flags, axes = pop_own_flags(own)
    resolved = resolve_model(checkpoint, flags)
    check_own_model_flags(resolved.model, checkpoint, data, axes)
    echo_adoption(resolved, flags)
    if int8 is None and resolved.checkpoint is not None:
        config = _follow_compress_int8(resolved.checkpoint, config)
    if target == "c":
        # integer-only code has int8 weights: only an explicit --no-int8 refuses it
        weights_int8 = config.int8 or (integer_only and int8 is None)
        _export_c(resolved, checkpoint, output, weights_int8, integer_only, as_json)
        return
    if embed_bits is None and resolved.checkpoint is not None:
        from edgernn.compress.precision import embed_bits as recorded_bits

        config = replace(config, embed_bits=recorded_bits(resolved.checkpoint.compression))
    # The bundle is built aside and swapped in whole: a killed export keeps the old one.
    with folder_lock(output), staged_folder(output) as staging:
        if resolved.seq2seq is not None:
            _export_seq2seq(resolved, flags, staging, config)
        elif resolved.checkpoint is None:
            export_own(resolved.model, staging, config, axes)
        else:
            export_bundle(resolved.checkpoint, staging, data, config)
    bundle = Path(output)
    manifest = read_manifest(bundle)
    for entry in manifest["files"]:
        diff = entry["parity"]["max_abs_diff"]
        click.echo(
            f"{entry['path']:>18}: {entry['size_bytes'] / 1024:8.1f} KiB  "
            f"max |diff| {diff:.2e} vs {entry['parity']['against']}"
        )
    scores = manifest["metrics"].get("results", {})
    if scores:
        echo_metrics(scores)
    if manifest["metrics"].get("note"):
        click.echo(f"note: {manifest['metrics']['note']}")
    click.echo(f"bundle: {bundle}")
    if as_json:
        keys = ("path", "role", "precision", "size_bytes")
        files = [{key: entry[key] for key in keys} for entry in manifest["files"]]
        echo_json({"bundle": str(bundle), "files": files, "metrics": manifest["metrics"]})


def _export_c(
    resolved, path: str, output: str, int8: bool, integer_only: bool, as_json: bool
) -> None:
    from edgernn.c import CExportConfig, export_c
    from edgernn.lock import folder_lock

    context = click.get_current_context()
    for name in _ONNX_ONLY:
        if context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE:
            flag = "--" + name.replace("_", "-")
            raise EdgeRNNError(f"{flag} applies to ONNX bundles; drop it with --target c")
    if resolved.checkpoint is None:
        raise EdgeRNNError(
            f"{path}: the C target needs an edgernn checkpoint or a model edgernn adopts; "
            "this one is kept as it is: export it with --target onnx"
        )
    config = CExportConfig(precision="int8" if int8 else "fp32", integer_only=integer_only)
    with folder_lock(output):
        result = export_c(resolved.checkpoint, output, config)
    parity = result["parity"]
    if parity["checked"]:
        click.echo(f"max |diff| {parity['max_abs_diff']:.2e} vs {parity['against']}")
    else:
        click.echo(f"note: {parity['note']}")
    kind = result["precision"] + (", integer-only" if result["integer_only"] else "")
    click.echo(
        f"{kind}: flash {result['flash_bytes']:,} bytes, "
        f"RAM {result['ram_bytes']:,} bytes; C sources: {output}"
    )
    if as_json:
        echo_json(result)


def _export_seq2seq(resolved, flags, staging, config: ExportConfig) -> None:
    # A user's seq2seq, by parts: encoder + one-step decoder graphs (edgernn.own.seq2seq).
    from edgernn.export.own_seq2seq import export_own_seq2seq
    from edgernn.own.vocab import read_json_mapping

    vocab = read_json_mapping(flags.vocab, "vocab") if flags.vocab else None
    export_own_seq2seq(resolved.model, resolved.seq2seq, staging, config, vocab, flags.tokens)


def _follow_compress_int8(checkpoint, config: ExportConfig) -> ExportConfig:
    # A student whose int8 compress turned off or rejected gets no int8 graphs by default:
    # the ONNX int8 follows the one decision compress recorded (edgernn.compress.precision).
    from edgernn.compress.precision import fp32_only_note

    note = fp32_only_note(checkpoint.compression)
    if note is None:
        return config
    click.echo(f"note: {note}; --int8 exports int8 graphs anyway")
    return replace(config, int8=False)


def echo_adoption(resolved, flags) -> None:
    """Say how your own model was taken: adopted (and how), or why it stays as it is."""
    from edgernn.own.adopt import describe_adoption

    if resolved.adoption is not None:
        click.echo(f"note: {describe_adoption(resolved.adoption)}")
    elif resolved.not_adopted and flags.adopt and resolved.seq2seq is None:
        click.echo(f"note: {resolved.not_adopted}; it is kept as it is")


def check_own_model_flags(model, path: str, data: str | None, axes: dict) -> None:
    """Refuse --data for an own model kept as it is, and --axes for an edgernn checkpoint."""
    from edgernn.own.load import OwnModel

    if isinstance(model, OwnModel) and data is not None:
        raise EdgeRNNError(
            f"--data: {path} is your own model, kept as it is (not adopted), which has no "
            "task to score; drop --data"
        )
    if not isinstance(model, OwnModel) and axes:
        raise EdgeRNNError(
            f"--axes is for your own model kept as it is; {path} is an edgernn checkpoint "
            "(or was adopted as one): drop --axes, or add --no-adopt"
        )


@main.command("predict")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.argument("inputs", nargs=-1)
@click.option(
    "--precision", type=click.Choice(["auto", "int8", "fp32"]), default="auto", show_default=True
)
@click.option("--beam", type=click.IntRange(min=1), default=1, help="seq2seq beam width [greedy].")
@click.option("--length", type=click.IntRange(min=1), default=100, help="lm: tokens to generate.")
@click.option("--temperature", type=Number(min=0), default=0.0, help="lm: 0 is greedy.")
@click.option("--top-k", type=click.IntRange(min=1), help="lm: sample among the k likeliest.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option(
    "--unknown",
    type=click.Choice(["unk", "error"]),
    default="unk",
    show_default=True,
    help="Unknown input tokens become <unk>, or are an error.",
)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of results.")
def predict_command(bundle, inputs, as_json, precision, unknown, beam, **sampling):
    """Run a bundle with the torch-free runtime on texts or .txt/.tsv/.csv/.npz files.

    With no INPUT, reads one input per line from stdin (a language model starts fresh).
    """
    import sys

    from edgernn.runtime import Runtime
    from edgernn.runtime.inputs import read_inputs, read_stdin

    runtime = Runtime(bundle, precision, unknown=unknown)
    if runtime.task == "custom":
        raise EdgeRNNError(
            f"{bundle}: a custom model takes arrays, not texts or files; run it from Python: "
            "Runtime(bundle).run('model', feeds)"
        )
    numeric = runtime.manifest["input"]["type"] == "features"
    items = read_inputs(list(inputs), numeric)
    if not inputs:
        items = (
            [""]
            if runtime.task == "lm"
            else read_inputs(read_stdin(sys.stdin.buffer.read()), numeric)
        )
    if runtime.task == "lm":
        texts = [runtime.generate(prefix, **sampling) for prefix in items]
        results = [{"text": text} for text in texts]
    elif runtime.task == "seq2seq":
        results = [{"translation": text} for text in runtime.translate(items, beam=beam)]
    else:
        results = runtime.predict(items)
    for item, result in zip(items, results, strict=True):
        click.echo(_show_prediction(item, result))
    if as_json:
        summary = {"bundle": bundle, "task": runtime.task, "precision": runtime.precision}
        echo_json(summary | {"predictions": results})


def _show_prediction(item, result: dict) -> str:
    if "label" in result:
        return f"{result['label']}\t{result['probabilities'][result['label']]:.3f}\t{item}"
    if "tags" in result:
        return " ".join(f"{t}/{g}" for t, g in zip(result["tokens"], result["tags"], strict=True))
    if "values" in result:
        return " ".join(f"{value:.6g}" for value in result["values"])
    if "text" in result:
        return item + result["text"]
    return result["translation"]
