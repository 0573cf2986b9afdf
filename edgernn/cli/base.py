"""The command group and the helpers every command module shares (torch-free).

Command modules import from here, and ``edgernn.cli`` imports them to register their
commands, so nothing imports ``edgernn.cli`` back.
"""

from __future__ import annotations

import json
import math
import os
import sys
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

    def main(self, *args, **kwargs):
        # Here, not in invoke: --version and --help write to stdout before invoke runs.
        try:
            return super().main(*args, **kwargs)
        except OSError as error:
            _exit_if_disk_full(error)
            raise


def _exit_if_disk_full(error: OSError) -> None:
    """A full disk or a full stdout (``> /dev/full``): one line on stderr, exit 1."""
    from edgernn.atomic import DISK_FULL_FIX, disk_full

    reason = disk_full(error)
    if reason is None:
        return
    if _raised_by_echo(error):
        what = "cannot write to standard output"
        # Python flushes stdout once more at exit; send what is left nowhere, not to a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    else:
        what = f"cannot write {error.filename or 'a file'}"
    click.echo(f"Error: {what}: {reason}; {DISK_FULL_FIX}", err=True)
    sys.exit(1)


def _raised_by_echo(error: OSError) -> bool:
    """Whether ``click.echo`` raised it: every command writes its output through echo."""
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code is click.utils.echo.__code__:
            return True
        trace = trace.tb_next
    return False


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


TEXT_OPTIONS = [
    click.option("--tokens", type=click.Choice(["char", "word"]), help="Text tokenization."),
    click.option(
        "--unicode",
        type=click.Choice(["nfc", "none"]),
        help="Unicode normalization of text [default: nfc].",
    ),
    click.option(
        "--lowercase/--no-lowercase",
        default=None,
        help="Lowercase text [default: yes for word tokens, no for tag and char].",
    ),
    click.option(
        "--split-punct/--no-split-punct",
        default=None,
        help="Punctuation marks become tokens of their own [default: yes for word tokens].",
    ),
]


def text_options(command):
    """How text data is read into tokens (``train`` and ``prepare`` take the same flags)."""
    for option in reversed(TEXT_OPTIONS):
        command = option(command)
    return command


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
