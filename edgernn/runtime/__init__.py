"""Torch-free inference for device apps: numpy and onnxruntime only.

Nothing in this package imports torch (a test checks it in a fresh interpreter): the package
boundary is the device boundary. ``runner`` runs a bundle (``sessions`` loads its verified
graphs), ``checks`` bounds every input, ``codec`` turns text into ids and back, ``search``
decodes (greedy, sampling, beam), ``inputs`` reads ``edgernn predict``'s input files.

Example::

    from edgernn.runtime import Runtime

    Runtime("runs/bundle").predict(["a truly great film"])
"""

from edgernn.runtime.checks import RuntimeLimits
from edgernn.runtime.runner import Runtime

__all__ = ["Runtime", "RuntimeLimits"]
