"""`edgernn train`, `evaluate` and `generate`: teachers and what to do with them."""

from __future__ import annotations

import click

from edgernn.cli.base import (
    DEVICE,
    SEED,
    Number,
    echo_json,
    echo_metrics,
    main,
    output_location,
    require_device,
    text_options,
)
from edgernn.config import (
    ATTENTIONS,
    CELLS,
    DEFAULT_ATTENTION,
    POOLINGS,
    TASKS,
    ModelSpec,
    TrainConfig,
)

# Defaults are ModelSpec's and TrainConfig's; flag names are their field names.


@main.command()
@click.option("--task", required=True, type=click.Choice(TASKS), help="What the model predicts.")
@click.option("--data", required=True, help="builtin:NAME, a data file, or a split directory.")
@click.option("--cell", type=click.Choice(CELLS), default=ModelSpec.cell, show_default=True)
@click.option("--bidirectional", is_flag=True, help="Read sequences both ways (not for lm).")
@click.option("--layers", type=click.IntRange(min=1), default=ModelSpec.layers, show_default=True)
@click.option("--hidden", type=click.IntRange(min=1), default=ModelSpec.hidden, show_default=True)
@click.option("--embed", type=click.IntRange(min=1), default=ModelSpec.embed, show_default=True)
@click.option(
    "--attention",
    type=click.Choice(ATTENTIONS),
    help=f"seq2seq attention [default: {DEFAULT_ATTENTION}].",
)
@click.option(
    "--pooling", type=click.Choice(POOLINGS), default=ModelSpec.pooling, show_default=True
)
@click.option(
    "--dropout",
    type=Number(0, 1, max_open=True),
    default=ModelSpec.dropout,
    show_default=True,
)
@text_options
@click.option(
    "--max-len",
    type=click.IntRange(min=1),
    default=ModelSpec.max_len,
    show_default=True,
    help="Longest input sequence the model accepts.",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=TrainConfig.epochs,
    show_default=True,
    help="Upper bound; early stopping on the validation split ends sooner.",
)
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    help="Stop after this many optimizer steps in all (the schedule fits them) [default: "
    "the epochs decide].",
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=TrainConfig.batch_size, show_default=True
)
@click.option("--lr", type=Number(min=0, min_open=True), default=TrainConfig.lr, show_default=True)
@click.option(
    "--patience", type=click.IntRange(min=1), default=TrainConfig.patience, show_default=True
)
@click.option("--seed", type=SEED, default=TrainConfig.seed, show_default=True)
@DEVICE
@click.option(
    "--resume",
    is_flag=True,
    help="Continue a killed run of this command from its last finished epoch (the state "
    "kept in OUTPUT.resume); without it an earlier run's state is replaced.",
)
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Data-parallel processes on this machine (starts torchrun; with --device cuda, "
    "one GPU each).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of results.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    callback=output_location,
    help="Checkpoint file to write.",
)
def train(
    task,
    data,
    epochs,
    max_steps,
    batch_size,
    lr,
    patience,
    seed,
    device,
    resume,
    nproc,
    quiet,
    as_json,
    output,
    tokens,
    unicode,
    lowercase,
    split_punct,
    **choices,
):
    """Train a full-precision teacher and save a safe checkpoint.

    Under torchrun (or with --nproc) every process trains on its share of each batch; rank 0
    alone prints and writes the checkpoint and the resume state.
    """
    from edgernn import distributed
    from edgernn.checkpoint import save_checkpoint
    from edgernn.paths import check_output_not_input, data_path
    from edgernn.resume import state_path
    from edgernn.train import train as train_model

    check_output_not_input(output, [("--data", data_path(data))])
    require_device(device)
    text = {"unicode": unicode, "lowercase": lowercase, "split_punctuation": split_punct}
    if nproc > 1:
        _launch(nproc, device, (data, task, tokens, text), choices)
    config = TrainConfig(
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        seed=seed,
        progress=not quiet,
    )
    state = state_path(output)
    with distributed.session(device):
        main_rank = distributed.is_main()  # asked inside: the group ends with the block
        if main_rank:
            _prepare_state(state, resume)
        distributed.barrier()  # no rank may read a state rank 0 is about to remove
        checkpoint = train_model(data, task, config, tokens, device, text, state, **choices)
    if not main_rank:
        return
    path = save_checkpoint(checkpoint, output)
    echo_metrics(checkpoint.metrics)
    click.echo(f"checkpoint: {path}")
    if as_json:
        echo_json({"metrics": checkpoint.metrics, "checkpoint": str(path)})


def _prepare_state(state, resume: bool) -> None:
    """Keep the resume state of an earlier run only when asked to continue it."""
    if state.exists() and not resume:
        click.echo(
            f"note: starting over; {state} of an earlier run is replaced (--resume continues it)"
        )
        state.unlink()
    elif resume and not state.exists():
        click.echo(f"note: nothing to resume ({state} does not exist); training from the start")


def _launch(nproc: int, device: str, inputs: tuple, choices: dict) -> None:
    """``--nproc N``: run this same command under torchrun with N processes; exit with its code.

    The data is read and checked here first, so bad input fails once, in one line, instead
    of once per process plus torchrun's failure report.
    """
    import os
    import subprocess
    import sys

    from edgernn import distributed
    from edgernn.errors import EdgeRNNError
    from edgernn.train import prepare

    if distributed.place().world > 1:
        raise EdgeRNNError("--nproc starts torchrun itself; drop it when running under torchrun")
    _check_gpus(nproc, device)
    prepare(*inputs, **choices)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", str(nproc), "-m", "edgernn", "train", *_forwarded()]
    # Set here, torchrun neither pins every rank to one thread nor warns that it does.
    threads = max(1, (os.cpu_count() or 1) // nproc)
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}
    sys.stdout.flush()
    raise SystemExit(subprocess.run(command, env=env).returncode)


def _check_gpus(nproc: int, device: str) -> None:
    import torch

    from edgernn.errors import EdgeRNNError

    if device != "cuda":
        return
    gpus = torch.cuda.device_count()
    if gpus < nproc:
        raise EdgeRNNError(
            f"--nproc {nproc} --device cuda: only {gpus} GPU(s) here; one process needs one GPU"
        )


def _forwarded() -> list[str]:
    """This command's options as flags again, less --nproc: what each torchrun rank runs."""
    ctx = click.get_current_context()
    args = []
    for param in ctx.command.params:
        value = ctx.params[param.name]
        if param.name == "nproc" or value is None:
            continue
        if param.is_flag and param.secondary_opts:  # --x/--no-x: either is a choice
            args.append(param.opts[0] if value else param.secondary_opts[0])
        elif param.is_flag:
            args += [param.opts[-1]] if value else []
        else:
            args += [param.opts[-1], str(value)]
    return args


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
    echo_metrics({split: scores})
    if as_json:
        echo_json({"metrics": {split: scores}, "checkpoint": checkpoint})


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
    type=Number(min=0),
    default=0.8,
    show_default=True,
    help="0 is greedy; higher is more random.",
)
@click.option("--top-k", type=click.IntRange(min=1), help="Sample only among the k likeliest.")
@click.option("--seed", type=SEED, default=0, show_default=True)
def generate(checkpoint, prefix, length, temperature, top_k, seed):
    """Sample text from a language-model checkpoint."""
    from edgernn.checkpoint import load_checkpoint
    from edgernn.generate import generate_text

    text = generate_text(load_checkpoint(checkpoint), prefix, length, temperature, top_k, seed)
    click.echo(prefix + text)
