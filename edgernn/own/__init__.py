"""Your own model: a user's ``nn.Module`` (not built by edgernn) and its example inputs.

``load`` reads what users save (a trusted pickle) and binds ``--example`` inputs to
``forward``'s arguments.
"""

from edgernn.own.load import OwnModel, load_model, load_own_module, load_with_example

__all__ = ["OwnModel", "load_model", "load_own_module", "load_with_example"]
