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
@click.option("--tokens", type=click.Choice(["char", "word"]), help="Text tokenization.")
@click.option(
    "--unicode",
    type=click.Choice(["nfc", "none"]),
    help="Unicode normalization of text [default: nfc].",
)
@click.option(
    "--lowercase/--no-lowercase",
    default=None,
    help="Lowercase text [default: yes for word tokens, no for tag and char].",
)
@click.option(
    "--split-punct/--no-split-punct",
    default=None,
    help="Punctuation marks become tokens of their own [default: yes for word tokens].",
)
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
    batch_size,
    lr,
    patience,
    seed,
    device,
    resume,
    quiet,
    as_json,
    output,
    tokens,
    unicode,
    lowercase,
    split_punct,
    **choices,
):
    """Train a full-precision teacher and save a safe checkpoint."""
    from edgernn.checkpoint import save_checkpoint
    from edgernn.paths import check_output_not_input, data_path
    from edgernn.resume import state_path
    from edgernn.train import train as train_model

    check_output_not_input(output, [("--data", data_path(data))])
    require_device(device)
    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        seed=seed,
        progress=not quiet,
    )
    text = {"unicode": unicode, "lowercase": lowercase, "split_punctuation": split_punct}
    state = state_path(output)
    if state.exists() and not resume:
        click.echo(
            f"note: starting over; {state} of an earlier run is replaced (--resume continues it)"
        )
        state.unlink()
    elif resume and not state.exists():
        click.echo(f"note: nothing to resume ({state} does not exist); training from the start")
    checkpoint = train_model(data, task, config, tokens, device, text, state, **choices)
    path = save_checkpoint(checkpoint, output)
    echo_metrics(checkpoint.metrics)
    click.echo(f"checkpoint: {path}")
    if as_json:
        echo_json({"metrics": checkpoint.metrics, "checkpoint": str(path)})


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
