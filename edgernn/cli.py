"""The ``edgernn`` command line: flags -> config -> one library call -> echo."""

from __future__ import annotations

import json

import click

from edgernn.config import ATTENTIONS, CELLS, POOLINGS, TASKS, TrainConfig
from edgernn.errors import EdgeRNNError


class _Commands(click.Group):
    """Turns user errors raised anywhere below into one line and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EdgeRNNError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=_Commands)
@click.version_option(package_name="edgernn")
def main() -> None:
    """Train, compress and export recurrent neural networks for edge devices."""


def _echo_json(payload: dict) -> None:
    click.echo(json.dumps(payload, sort_keys=True))


def _echo_metrics(metrics: dict[str, dict[str, float]]) -> None:
    for split, scores in metrics.items():
        shown = "  ".join(f"{name} {value:.4f}" for name, value in scores.items())
        click.echo(f"{split:>5}: {shown}")


@main.command()
@click.option("--task", required=True, type=click.Choice(TASKS), help="What the model predicts.")
@click.option("--data", required=True, help="builtin:NAME, a data file, or a split directory.")
@click.option("--cell", type=click.Choice(CELLS), default="lstm", show_default=True)
@click.option("--bidirectional", is_flag=True, help="Read sequences both ways (not for lm).")
@click.option("--layers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--hidden", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--embed", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--attention", type=click.Choice(ATTENTIONS), help="seq2seq attention [bahdanau].")
@click.option("--pooling", type=click.Choice(POOLINGS), default="last", show_default=True)
@click.option(
    "--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True
)
@click.option("--tokens", type=click.Choice(["char", "word"]), help="Text tokenization.")
@click.option(
    "--max-len",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Longest input sequence the model accepts.",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Upper bound; early stopping on the validation split ends sooner.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=3e-3, show_default=True)
@click.option("--patience", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of results.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Checkpoint file to write.",
)
def train(
    task,
    data,
    epochs,
    batch_size,
    lr,
    patience,
    seed,
    device,
    quiet,
    as_json,
    output,
    tokens,
    **choices,
):
    """Train a full-precision teacher and save a safe checkpoint."""
    from edgernn.checkpoint import save_checkpoint
    from edgernn.train import train as train_model

    _require_device(device)
    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        seed=seed,
        progress=not quiet,
    )
    checkpoint = train_model(data, task, config, tokens=tokens, device=device, **choices)
    path = save_checkpoint(checkpoint, output)
    _echo_metrics(checkpoint.metrics)
    click.echo(f"checkpoint: {path}")
    if as_json:
        _echo_json({"metrics": checkpoint.metrics, "checkpoint": str(path)})


def _require_device(device: str) -> None:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise EdgeRNNError("--device cuda: no CUDA GPU is available here; use --device cpu")


@main.command("evaluate")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--data", help="DATA to score on [default: the data the model was trained on].")
@click.option(
    "--split", type=click.Choice(["train", "valid", "test"]), default="test", show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of results.")
def evaluate_command(checkpoint, data, split, as_json):
    """Score a trained checkpoint on one split of its task's data."""
    from edgernn.checkpoint import load_checkpoint
    from edgernn.evaluate import evaluate_checkpoint

    scores = evaluate_checkpoint(load_checkpoint(checkpoint), data, split)
    _echo_metrics({split: scores})
    if as_json:
        _echo_json({"metrics": {split: scores}, "checkpoint": checkpoint})


@main.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--prefix", default="", help="Text the sample continues.")
@click.option(
    "--length",
    type=click.IntRange(min=1, max=100_000),
    default=200,
    show_default=True,
    help="Tokens to generate.",
)
@click.option(
    "--temperature",
    type=click.FloatRange(min=0),
    default=0.8,
    show_default=True,
    help="0 is greedy; higher is more random.",
)
@click.option("--top-k", type=click.IntRange(min=1), help="Sample only among the k likeliest.")
@click.option("--seed", type=int, default=0, show_default=True)
def generate(checkpoint, prefix, length, temperature, top_k, seed):
    """Sample text from a language-model checkpoint."""
    from edgernn.checkpoint import load_checkpoint
    from edgernn.generate import generate_text

    text = generate_text(load_checkpoint(checkpoint), prefix, length, temperature, top_k, seed)
    click.echo(prefix + text)


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
    help="Softmax temperature of distillation [2 classify/tag, 1 lm/seq2seq].",
)
@click.option("--alpha", type=click.FloatRange(0, 1), help="Weight of the teacher's targets [0.5].")
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
    help="Weight of hidden-state matching (not seq2seq) [0: off].",
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
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of results.")
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Bundle directory."
)
def compress_command(model, data, epochs, seed, quiet, as_json, output, **options):
    """Distill, prune and quantize a trained model; write student.pt and a report."""
    from dataclasses import replace

    from edgernn.checkpoint import load_checkpoint
    from edgernn.compress import compress, compress_config, write_compressed
    from edgernn.distill import default_train_config

    distill_keys = ("temperature", "alpha", "seq2seq", "hidden_weight")
    distill_options = {key: options.pop(key) for key in distill_keys}
    train = replace(default_train_config(), epochs=epochs, seed=seed, progress=not quiet)
    config = compress_config(distill_options=distill_options, train=train, **options)
    result = compress(load_checkpoint(model), config, data)
    files = write_compressed(result, output, teacher_file=model)
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
        _echo_json(_compress_summary(result, files))


def _compress_summary(result, files: dict) -> dict:
    teacher, final = result.rows[0], [row for row in result.rows if row.kept][-1]
    return {
        "bundle": str(files["student"].parent),
        "files": {role: str(path) for role, path in files.items()},
        "metrics": final.metrics,
        "teacher_metrics": teacher.metrics,
        "ratios": {
            "params": final.params / teacher.params,
            "nonzero_params": final.nonzero_params / teacher.nonzero_params,
            "size": final.size_bytes / teacher.size_bytes,
        },
    }


@main.command("export")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Bundle directory."
)
@click.option("--data", help="DATA whose test split scores the graphs [default: the model's].")
@click.option("--no-int8", is_flag=True, help="Write the fp32 graphs only.")
@click.option("--per-channel", is_flag=True, help="int8 scales per output channel.")
@click.option("--no-eval", is_flag=True, help="Do not score the graphs on the test split.")
@click.option(
    "--exporter",
    type=click.Choice(["dynamo", "torchscript"]),
    default="dynamo",
    show_default=True,
    help="torch.onnx exporter tried first; the other one is the fallback.",
)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of results.")
def export_command(checkpoint, output, data, no_int8, per_channel, no_eval, exporter, as_json):
    """Export a checkpoint to an ONNX bundle (fp32 + int8), verified against PyTorch."""
    from edgernn.bundle import read_manifest
    from edgernn.checkpoint import load_checkpoint
    from edgernn.export import ExportConfig, export_bundle

    config = ExportConfig(
        int8=not no_int8, per_channel=per_channel, evaluate=not no_eval, exporter=exporter
    )
    bundle = export_bundle(load_checkpoint(checkpoint), output, data, config)
    manifest = read_manifest(bundle)
    for entry in manifest["files"]:
        diff = entry["parity"]["max_abs_diff"]
        click.echo(
            f"{entry['path']:>18}: {entry['size_bytes'] / 1024:8.1f} KiB  "
            f"max |diff| {diff:.2e} vs {entry['parity']['against']}"
        )
    scores = manifest["metrics"].get("results", {})
    if scores:
        _echo_metrics(scores)
    if manifest["metrics"].get("note"):
        click.echo(f"note: {manifest['metrics']['note']}")
    click.echo(f"bundle: {bundle}")
    if as_json:
        keys = ("path", "role", "precision", "size_bytes")
        files = [{key: entry[key] for key in keys} for entry in manifest["files"]]
        _echo_json({"bundle": str(bundle), "files": files, "metrics": manifest["metrics"]})


@main.command("predict")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.argument("inputs", nargs=-1)
@click.option(
    "--precision", type=click.Choice(["auto", "int8", "fp32"]), default="auto", show_default=True
)
@click.option("--beam", type=click.IntRange(min=1), default=1, help="seq2seq beam width [greedy].")
@click.option("--length", type=click.IntRange(min=1), default=100, help="lm: tokens to generate.")
@click.option("--temperature", type=click.FloatRange(min=0), default=0.0, help="lm: 0 is greedy.")
@click.option("--top-k", type=click.IntRange(min=1), help="lm: sample among the k likeliest.")
@click.option("--seed", type=int, default=0, show_default=True)
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
    from edgernn.runtime import Runtime
    from edgernn.runtime_inputs import read_inputs

    runtime = Runtime(bundle, precision, unknown=unknown)
    numeric = runtime.manifest["input"]["type"] == "features"
    items = read_inputs(list(inputs), numeric)
    if not inputs:
        items = [""] if runtime.task == "lm" else read_inputs(_stdin_lines(), numeric)
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
        _echo_json(summary | {"predictions": results})


def _stdin_lines() -> list[str]:
    import sys

    lines = [line for line in sys.stdin.read().splitlines() if line.strip()]
    if not lines:
        raise EdgeRNNError("no inputs: give INPUT arguments or lines on stdin")
    return lines


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


def _positive_ints(ctx, param, value: str) -> tuple[int, ...]:
    try:
        numbers = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if any(n < 1 for n in numbers):
        raise click.BadParameter(f"every value must be at least 1, got {value!r}")
    return numbers


@main.command("bench")
@click.argument("models", nargs=-1, required=True)
@click.option("--data", help="DATA whose test split scores each checkpoint's task metric.")
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="cuda: PyTorch fp32/fp16 and ONNX Runtime's CUDA provider (int8 is CPU-only).",
)
@click.option(
    "--batch-sizes",
    default="1,8,32",
    show_default=True,
    callback=_positive_ints,
    help="Batch sizes to time, comma-separated.",
)
@click.option(
    "--seq-lens",
    default="16,64,256",
    show_default=True,
    callback=_positive_ints,
    help="Sequence lengths to time, comma-separated.",
)
@click.option(
    "--threads",
    default="1",
    show_default=True,
    callback=_positive_ints,
    help="Intra-op thread counts to measure, e.g. 1,2 (inter-op threads are pinned to 1).",
)
@click.option(
    "--example",
    type=click.Path(exists=True, dir_okay=False),
    help="inputs.npz for ONNX files edgernn did not make: arrays keyed by input names.",
)
@click.option(
    "--min-iters",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Timed calls per grid point at least (after warm-up).",
)
@click.option(
    "--min-time",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Seconds each grid point is timed at least.",
)
@click.option(
    "--max-time",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Seconds after which a slow grid point stops (keeping at least 3 calls).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of results.")
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Report directory."
)
def bench_command(models, data, device, example, min_iters, min_time, max_time, **options):
    """Measure latency, memory, size and accuracy of checkpoints, ONNX files and bundles.

    MODELS are .pt checkpoints (measured as PyTorch fp32 and dynamic int8, plus fp16 on
    cuda), .onnx files and bundle directories (ONNX Runtime). Each runs in a fresh process.
    Writes report.json, report.md and report.html to the output directory.
    """
    from edgernn.bench import BenchConfig, TimingConfig, bench, candidates_from_paths
    from edgernn.bench.markdown import console_lines
    from edgernn.bench.report import write_report

    output, as_json = options.pop("output"), options.pop("as_json")
    timing = TimingConfig(
        min_iters=min_iters, min_time_s=min_time, max_time_s=max(min_time, max_time)
    )
    config = BenchConfig(
        device=device,
        data=data,
        timing=timing,
        progress=not options.pop("quiet"),
        **options,
    )
    report = bench(candidates_from_paths(list(models), device, example), config)
    paths = write_report(report, output)
    for line in console_lines(report):
        click.echo(line)
    click.echo(f"report: {paths['md']}, {paths['html']}")
    if as_json:
        _echo_json({"report": str(paths["json"])} | {k: str(paths[k]) for k in ("md", "html")})
