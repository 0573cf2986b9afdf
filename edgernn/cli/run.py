"""`edgernn run`: a whole recipe (pipelines/*.toml): teacher -> compress -> bundle."""

from __future__ import annotations

from pathlib import Path

import click

from edgernn.cli.base import DEVICE, echo_json, main, require_device


@main.command("run")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    help="Output folder [default: runs/<recipe file name without .toml>].",
)
@DEVICE
@click.option("--quiet", is_flag=True, help="No progress bars (stage lines are still shown).")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of results.")
def run_command(recipe, output, device, quiet, as_json):
    """Run a recipe; a rerun skips the stages that already finished.

    Under torchrun every process trains the teacher and the student on its share of each
    batch; rank 0 alone prints and writes.
    """
    from edgernn import distributed
    from edgernn.paths import check_output_not_input
    from edgernn.recipe.parse import load_recipe
    from edgernn.recipe.run import run_recipe

    parsed = load_recipe(recipe)
    require_device(device)
    outdir = Path(output) if output else Path("runs") / Path(recipe).stem
    check_output_not_input(outdir, [("RECIPE", recipe), *parsed.inputs()], folder=True)
    with distributed.session(device):  # under torchrun: every rank trains, rank 0 writes
        summary = run_recipe(parsed, outdir, progress=not quiet, log=click.echo, device=device)
    if summary is None:  # another rank than 0
        return
    shown = "  ".join(f"{name} {value:.4f}" for name, value in summary["metrics"].items())
    click.echo(f"final: {shown}")
    click.echo(f"size ratio: {summary['ratios']['size_bytes']:.3f} of the teacher")
    click.echo(f"bundle: {summary['bundle']}")
    click.echo(f"report: {summary['report']}")
    if as_json:
        keys = ("bundle", "report", "metrics", "ratios")
        echo_json({key: summary[key] for key in keys})
