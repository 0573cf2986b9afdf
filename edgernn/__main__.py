"""``python -m edgernn ...``: the same command line as the ``edgernn`` script."""

from edgernn.cli import main

main(prog_name="edgernn")
