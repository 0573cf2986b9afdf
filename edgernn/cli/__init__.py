"""The ``edgernn`` command line: flags -> config -> one library call -> echo.

One module per group of commands; importing them registers the commands on ``main``
(``base``: the group and the shared helpers).
"""

from edgernn.cli import bench, compress, export, prepare, run, train  # noqa: F401  (registers)
from edgernn.cli.base import DEVICE, echo_json, echo_metrics, main, require_device

__all__ = ["DEVICE", "echo_json", "echo_metrics", "main", "require_device"]
