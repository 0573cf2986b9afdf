"""`edgernn bench`: latency, memory, size and metric reports."""

from __future__ import annotations

import click

from edgernn.bench.config import DEVICES, BenchConfig, TimingConfig
from edgernn.cli.base import Number, echo_json, main

EXAMPLE_HELP = (
    "inputs.npz for ONNX files edgernn did not make and for custom bundles (exported from "
    "your own module): arrays keyed by input names. A bare ONNX file is then timed at the "
    "example's shapes exactly (no batch or length grid) but for the axes --axes names."
)
AXES_HELP = (
    "An ONNX file with --example: the role of each axis of its input NAME, batch, time or - "
    "(as given), e.g. input=batch,- and state=-,batch,- for a streaming model's chunk and "
    "state; batch axes follow --batch-sizes, time axes --seq-lens. Repeat for each input."
)
END_TO_END_HELP = (
    "seq2seq and lm: also time the app's whole job per input, on one thread: Runtime.translate "
    "(greedy, beam 4) or Runtime.generate (32 tokens, temperature 0) for bundles, the model's "
    "own search for checkpoints, on test-split inputs with --data. The summary and its ratios "
    "then compare these rows, not one call of one graph."
)
CHUNK_HELP = (
    "The span one call covers, in ms (e.g. 32 for 512 samples at 16 kHz): adds the real-time "
    "factor (latency / span) to rows of ONNX files timed at their --example's shapes and of "
    "bundles' step graphs (timed at one --seq-lens value, the chunk length), and to their "
    "streaming entry (batch 1, state carried; one step per call when --seq-lens has several)."
)


def _joined(values: tuple[int, ...]) -> str:
    return ",".join(map(str, values))


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
    type=click.Choice(DEVICES),
    default=BenchConfig.device,
    show_default=True,
    help="cuda: PyTorch fp32/fp16 and ONNX Runtime's CUDA provider (int8 is CPU-only).",
)
@click.option(
    "--batch-sizes",
    default=_joined(BenchConfig.batch_sizes),
    show_default=True,
    callback=_positive_ints,
    help="Batch sizes to time, comma-separated (ONNX files with --example: on --axes batch axes).",
)
@click.option(
    "--seq-lens",
    default=_joined(BenchConfig.seq_lens),
    show_default=True,
    callback=_positive_ints,
    help="Sequence lengths to time, comma-separated (ONNX files with --example: on --axes time "
    "axes).",
)
@click.option(
    "--threads",
    default=_joined(BenchConfig.threads),
    show_default=True,
    callback=_positive_ints,
    help="Intra-op thread counts to measure, e.g. 1,2 (inter-op threads are pinned to 1).",
)
@click.option(
    "--example",
    type=click.Path(exists=True, dir_okay=False),
    help=EXAMPLE_HELP,
)
@click.option("--axes", multiple=True, metavar="NAME=ROLE,...", help=AXES_HELP)
@click.option("--chunk-ms", type=float, metavar="MS", help=CHUNK_HELP)
@click.option(
    "--end-to-end/--no-end-to-end",
    default=BenchConfig.end_to_end,
    show_default=True,
    help=END_TO_END_HELP,
)
@click.option(
    "--min-iters",
    type=click.IntRange(min=1),
    default=TimingConfig.min_iters,
    show_default=True,
    help="Timed calls per grid point at least (after warm-up).",
)
@click.option(
    "--min-time",
    type=Number(min=0),
    default=TimingConfig.min_time_s,
    show_default=True,
    help="Seconds each grid point is timed at least.",
)
@click.option(
    "--max-time",
    type=Number(min=0),
    default=TimingConfig.max_time_s,
    show_default=True,
    help="Seconds after which a slow grid point stops (keeping at least 3 calls).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of results.")
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Report directory."
)
def bench_command(models, data, device, example, axes, min_iters, min_time, max_time, **options):
    """Measure latency, memory, size and accuracy of checkpoints, ONNX files and bundles.

    MODELS are .pt checkpoints (measured as PyTorch fp32 and dynamic int8, plus fp16 on
    cuda), .onnx files and bundle directories (ONNX Runtime). Each runs in a fresh process.
    Writes report.json, report.md and report.html to the output directory.
    """
    from edgernn.bench import bench, candidates_from_paths
    from edgernn.export.axes import parse_axes
    from edgernn.paths import check_output_not_input, data_path
    from edgernn.report.markdown import console_lines
    from edgernn.report.schema import write_report

    output, as_json = options.pop("output"), options.pop("as_json")
    inputs = [("MODEL", path) for path in models] + [("--example", example)]
    check_output_not_input(output, [*inputs, ("--data", data_path(data))], folder=True)
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
    candidates = candidates_from_paths(
        list(models), device, example, parse_axes(axes), config.end_to_end
    )
    report = bench(candidates, config)
    paths = write_report(report, output)
    for line in console_lines(report):
        click.echo(line)
    click.echo(f"report: {paths['md']}, {paths['html']}")
    if as_json:
        files = {"report": str(paths["json"])} | {k: str(paths[k]) for k in ("md", "html")}
        echo_json(files | {"ratios": report["ratios"]})  # the summary's headline, as report.json
