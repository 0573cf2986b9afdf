"""The own-model options every command that takes a MODEL shares (export, compress).

``edgernn.own.resolve`` says what happens to the model they describe.
"""

from __future__ import annotations

import click

from edgernn.config import TASKS

# edgernn.own.source says why --trust-pickle is needed.
TRUST_HELP = (
    "Accept a MODEL that holds pickled code: your own nn.Module saved with torch.save(model, "
    "path), or a checkpoint dict with objects in it. Unpickling runs code from the file: only "
    "for files you trust. Its classes are imported from --model-file, the file's folder, the "
    "current directory or the installed packages. edgernn checkpoints and state dicts never "
    "need this."
)
EXAMPLE_HELP = (
    "inputs.npz for your own model (required for one): arrays keyed by forward's argument "
    "names, or arg0, arg1, ... by position. They fix input shapes, dtypes and valid values."
)
AXES_HELP = (
    "Your own model: the role of each axis of input NAME, batch, time or - (fixed), e.g. "
    "h0=-,batch,-. Default: rank >= 2 inputs are (batch, time, fixed...), a rank-1 input as "
    "long as the batch is (batch,), the rest fixed."
)
MODEL_FILE_HELP = (
    "Your own model: the .py that defines its classes, e.g. the training script (train.py) "
    "or models.py. It is imported as a module named edgernn_model_file, not run as a script: "
    "its top-level code DOES run (imports, definitions, any other statement; sys.argv is the "
    'file alone), the block under `if __name__ == "__main__":` does not. Needed for a model '
    "pickled from a script (classes in __main__) and, with --model-class, for a state dict."
)
MODEL_CLASS_HELP = (
    "Your own model saved as a state dict (torch.save(model.state_dict(), path), or a dict "
    "with one under state_dict, model_state_dict, model, net, ...): the nn.Module class in "
    "--model-file that builds it. Loads without --trust-pickle: the .pt holds only tensors "
    "and plain values, and the code that runs is your --model-file."
)
MODEL_ARGS_HELP = (
    "Keyword arguments for --model-class as a JSON object, e.g. '{\"hidden\": 64}', over the "
    "checkpoint's own config (a dict under model_args, config, hparams, args, ...; only the "
    "arguments __init__ takes). Default: that config, else no arguments."
)
TASK_HELP = (
    "Your own model: its task, classify, regress, tag or lm [default: inferred from its "
    "outputs and said in the output]."
)
VOCAB_HELP = (
    "Your own token model: its vocabulary as JSON, token -> id (word_to_idx.json) or a list "
    "by id [default: a word_to_idx/vocab/stoi/... key of the checkpoint dict]. Without one, "
    "tokens are named <id N> and text data cannot be encoded. A seq2seq: "
    '{"src": ..., "trg": ...}, the target with <sos> and <eos>.'
)
LABELS_HELP = (
    "Your own model: class or tag names in output order, as a JSON list (or name -> id) "
    "[default: a labels/label_to_idx/tag_to_ix/... key of the checkpoint dict, else 0, 1, ...]."
)
TOKENS_HELP = "Your own text model: char or word tokens [default: char if every token is one]."
NO_ADOPT_HELP = (
    "Keep your own model as it is (a custom bundle with your input names; int8 and export "
    "only) instead of rebuilding it as an edgernn model."
)
PART_HELP = (
    "Your own seq2seq model: the submodule that is its {} (exported by parts) [default: "
    "encoder/decoder, when the model has both]."
)
# The keyword arguments own_model_options adds to a command, as OwnFlags fields (+ axes).
OWN_MODEL_FLAGS = ("trust_pickle", "example", "axes", "model_file", "model_class", "model_args")
OWN_MODEL_FLAGS += ("task", "vocab", "labels", "tokens", "no_adopt", "encoder", "decoder")


def _parse_model_args(ctx, param, value):
    from edgernn.own.build import parse_model_args

    return parse_model_args(value)  # EdgeRNNError: one line, like every other user mistake


def own_model_options(command):
    """Add the own-model flags (``OWN_MODEL_FLAGS``) to a command; ``pop_own_flags`` reads them."""
    model_file = click.Path(exists=True, dir_okay=False)
    options = [
        click.option("--trust-pickle", is_flag=True, help=TRUST_HELP),
        click.option("--example", type=click.Path(exists=True, dir_okay=False), help=EXAMPLE_HELP),
        click.option("--axes", multiple=True, metavar="NAME=ROLE,...", help=AXES_HELP),
        click.option("--model-file", type=model_file, metavar="FILE.py", help=MODEL_FILE_HELP),
        click.option("--model-class", metavar="NAME", help=MODEL_CLASS_HELP),
        click.option(
            "--model-args", metavar="JSON", callback=_parse_model_args, help=MODEL_ARGS_HELP
        ),
        click.option("--task", type=click.Choice(TASKS[:4]), help=TASK_HELP),
        click.option("--vocab", type=click.Path(exists=True, dir_okay=False), help=VOCAB_HELP),
        click.option("--labels", type=click.Path(exists=True, dir_okay=False), help=LABELS_HELP),
        click.option("--tokens", type=click.Choice(["char", "word"]), help=TOKENS_HELP),
        click.option("--no-adopt", is_flag=True, help=NO_ADOPT_HELP),
        click.option("--encoder", metavar="NAME", help=PART_HELP.format("encoder")),
        click.option("--decoder", metavar="NAME", help=PART_HELP.format("one-step decoder")),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def own_model_inputs(options: dict) -> list[tuple[str, str | None]]:
    """``(flag, path)`` of the files the own-model flags in a command's arguments read."""
    flags = ("example", "model_file", "vocab", "labels")
    return [(f"--{name.replace('_', '-')}", options.get(name)) for name in flags]


def pop_own_flags(options: dict):
    """``(OwnFlags, axes)`` from a command's keyword arguments, which lose those flags."""
    from edgernn.export.axes import parse_axes
    from edgernn.own.resolve import OwnFlags

    values = {key: options.pop(key) for key in OWN_MODEL_FLAGS}
    axes = parse_axes(values.pop("axes"))
    return OwnFlags(adopt=not values.pop("no_adopt"), **values), axes
