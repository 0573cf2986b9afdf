"""The one int8 decision: does a checkpoint's bundle ship int8 graphs?

``compress`` decides once, in the PyTorch int8 stage, and records it in the checkpoint's
compression record (``int8_refused``: why int8 must not ship, or None). The ONNX export of
that checkpoint follows the record, so the bundle never ships int8 graphs of a model whose
int8 was turned off or rejected by the accuracy guard: ``finish_bundle``, a recipe's bundle
stage and ``edgernn export`` all ask ``ships_int8``. Torch-free, so the command line can ask it too.
"""

from __future__ import annotations

NO_QUANTIZE = "no-quantize given"  # why compress kept no int8: --no-quantize, or the recipe key


def ships_int8(compression: dict) -> bool:
    """False only when compress decided against int8; a plain trained checkpoint ships it.

    Example::

        ExportConfig(int8=ships_int8(checkpoint.compression))
    """
    return not decided_against(compression)


def decided_against(compression: dict) -> bool:
    """Whether the record says compress refused int8 (a plain checkpoint has no record)."""
    return bool(compression.get("int8_refused"))


def fp32_only_note(compression: dict) -> str | None:
    """The report note of a bundle without int8 graphs, or None when int8 ships."""
    if not decided_against(compression):
        return None
    return f"fp32 graphs only: {compression['int8_refused']}"


def embed_bits(compression: dict) -> int:
    """Bits of the int8 graphs' embedding tables compress was asked for (``--embed-bits``);
    8 for a plain trained checkpoint."""
    return int(compression.get("embed_bits", 8))
