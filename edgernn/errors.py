"""The one exception type for mistakes a user can cause (bad data, bad flags, bad files)."""


class EdgeRNNError(Exception):
    """A problem the user can fix; the message says what was wrong and what to do.

    The CLI turns it into one line on stderr and a non-zero exit, never a traceback.
    """
