"""Compression: distill -> prune -> int8 (``stages``), then the device bundle (``finish``).

``own`` is the same for a user's own module that edgernn cannot train (int8 + export only).

Example::

    from edgernn.compress import compress, write_compressed

    result = compress(load_checkpoint("teacher.pt"))
    write_compressed(result, "runs/bundle")
"""

from edgernn.compress.stages import (
    CompressConfig,
    Compressed,
    compress,
    compress_config,
    write_compressed,
)

__all__ = ["CompressConfig", "Compressed", "compress", "compress_config", "write_compressed"]
