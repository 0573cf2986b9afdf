"""Compression: distill -> prune -> int8 (``stages``), then the device bundle (``finish``).

``config`` holds the stages' settings and the command's flat options, ``bundle`` publishes a
result (what ``edgernn compress`` and a recipe's bundle stage both call). ``precision`` is the
one int8 decision the ONNX export follows (no int8 graphs of a model whose int8 compress
turned off or rejected). ``own`` is the same for a user's own module that edgernn cannot train
(int8 + export only).

Example::

    from edgernn.compress import CompressOptions, bundle_summary, compress, publish_bundle

    result = compress(load_checkpoint("teacher.pt"), CompressOptions(prune=0.5).config())
    names = publish_bundle(result, "runs/bundle", "teacher.pt")
    print(bundle_summary(result, "runs/bundle", names)["ratios"])

Exports resolve lazily: ``config`` is torch-free, so the command line reads its defaults
without importing torch.
"""

from __future__ import annotations

from edgernn.lazy import lazy_exports

_EXPORTS = {
    "BundleReportConfig": "edgernn.compress.config",
    "CompressConfig": "edgernn.compress.config",
    "CompressOptions": "edgernn.compress.config",
    "Compressed": "edgernn.compress.stages",
    "bundle_summary": "edgernn.compress.bundle",
    "compress": "edgernn.compress.stages",
    "finish_bundle": "edgernn.compress.finish",
    "publish_bundle": "edgernn.compress.bundle",
    "write_compressed": "edgernn.compress.stages",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
