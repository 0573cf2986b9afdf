"""Your own model: a user's ``nn.Module`` (not built by edgernn) and its example inputs.

``source`` loads what users save: a whole pickled module (trusted), or a state dict or
checkpoint dict with the class that built it (``modelfile`` imports the user's ``.py`` without
running its ``__main__`` block, ``build`` calls the class and loads the weights). ``load``
binds ``--example`` inputs to ``forward``'s arguments.
"""

from edgernn.own.build import ModelCode, parse_model_args
from edgernn.own.load import OwnModel, load_with_example
from edgernn.own.modelfile import import_model_file
from edgernn.own.source import OwnSource, load_model, load_own_module

__all__ = [
    "ModelCode",
    "OwnModel",
    "OwnSource",
    "import_model_file",
    "load_model",
    "load_own_module",
    "load_with_example",
    "parse_model_args",
]
