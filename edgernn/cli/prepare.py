"""`edgernn prepare`: encode a dataset once into memory-mapped shards for ``--data``."""

from __future__ import annotations

import click

from edgernn.cli.base import echo_json, main, text_options
from edgernn.config import TASKS, ModelSpec


@main.command()
@click.argument("data")
@click.option("--task", required=True, type=click.Choice(TASKS), help="What the data is for.")
@text_options
@click.option(
    "--max-len",
    type=click.IntRange(min=1),
    default=ModelSpec.max_len,
    show_default=True,
    help="Longest example allowed (language-model windows are cut to it).",
)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of results.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False),
    help="Shards folder to write (new, empty, or earlier shards, replaced atomically).",
)
def prepare(data, task, tokens, unicode, lowercase, split_punct, max_len, as_json, output):
    """Encode DATA once into a shards folder that train, compress and evaluate read lazily
    with --data FOLDER: memory then holds a batch, not the dataset.

    Line-oriented text files (classify .jsonl/.csv/.tsv, tag CoNLL, seq2seq .tsv) are
    streamed; other data is encoded in memory once.
    """
    from edgernn.data.shards import prepare_shards
    from edgernn.paths import check_output_not_input, data_path

    check_output_not_input(output, [("DATA", data_path(data))], folder=True)
    text = {"unicode": unicode, "lowercase": lowercase, "split_punctuation": split_punct}
    manifest = prepare_shards(data, task, output, tokens, text, max_len)
    counts = {name: split["count"] for name, split in manifest["splits"].items()}
    shown = "  ".join(f"{name} {count}" for name, count in counts.items())
    click.echo(f"examples: {shown}")
    click.echo(f"shards: {output}")
    if as_json:
        echo_json({"shards": output, "examples": counts, "streamed": manifest["streamed"]})
