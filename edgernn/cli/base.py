"""The command group and the helpers every command module shares (torch-free).

Command modules import from here, and ``edgernn.cli`` imports them to register their
commands, so nothing imports ``edgernn.cli`` back.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

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


class Number(click.FloatRange):
    """A float range that refuses NaN, and infinity unless ``allow_inf`` (where inf means
    "no limit"). click's own range lets NaN through: every comparison with it is false."""

    def __init__(self, *args, allow_inf: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.allow_inf = allow_inf

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if math.isnan(number) or (math.isinf(number) and not self.allow_inf):
            self.fail(f"{number} is not a finite number.", param, ctx)
        return number


SEED = click.IntRange(0, 2**64 - 1)  # what torch.manual_seed takes


def output_location(ctx, param, value):
    """Option callback: refuse ``-o`` under a regular file before any work starts."""
    from edgernn.atomic import check_folder_path

    if value is not None:
        check_folder_path(Path(value).parent)
    return value


DEVICE = click.option(
    "--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True
)


def require_device(device: str) -> None:
    """Refuse ``--device cuda`` up front on a machine without a GPU."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise EdgeRNNError("--device cuda: no CUDA GPU is available here; use --device cpu")


def echo_json(payload: dict) -> None:
    click.echo(json.dumps(payload, sort_keys=True))


def echo_metrics(metrics: dict[str, dict[str, float]]) -> None:
    for split, scores in metrics.items():
        shown = "  ".join(f"{name} {value:.4f}" for name, value in scores.items())
        click.echo(f"{split:>5}: {shown}")
