"""How a checkpoint becomes a bundle: ``ExportConfig`` (torch-free, like every config)."""

from __future__ import annotations

from dataclasses import dataclass

from edgernn.errors import EdgeRNNError

EXPORTERS = ("dynamo", "torchscript")
TOLERANCE = 1e-4  # fp32 max abs difference on logits / outputs / states
EMBED_BITS = (8, 4)  # embedding-table bits in int8 graphs (edgernn/export/int4.py)


@dataclass(frozen=True)
class ExportConfig:
    """How a checkpoint becomes a bundle."""

    int8: bool = True  # also write dynamically quantized int8 graphs
    # One int8 scale per output row (finer) instead of per tensor in ORT's integer kernels
    # and embedding tables; weight-only int8 weights have one per row either way.
    per_channel: bool = False
    evaluate: bool = True  # score PyTorch, ONNX fp32 and ONNX int8 on the test split
    exporter: str = "dynamo"  # tried first; the other exporter is the fallback
    tolerance: float = TOLERANCE  # fp32 parity bound (max abs difference)
    # Largest metric loss one LSTM/MatMul node's integer kernel may cost alone on the valid
    # split (points, or % relative for perplexity/MSE, as in compression), the worse of
    # padded batches and each example alone (the kernels' input scale depends on the call,
    # edgernn/export/int8.py); a node above it computes in float from int8 weights instead
    # (same file size). Measured whenever the data loads, also without evaluate; None: every
    # such node runs its integer kernel.
    int8_tolerance: float | None = 0.5
    # True: every LSTM/MatMul computes in float from int8 weights (weight-only, same size), so
    # an int8 result does not depend on batch mates, padding or how a stream is chunked, as
    # in fp32. Costs the integer kernels' speed: 1.2-2x on whole sequences at batch 1, none
    # for one-token streaming steps (benchmarks/results/int8_batching.md).
    int8_batch_independent: bool = False
    # Bits per weight of embedding tables in the int8 graphs: 4 stores rows as 4-bit blocks
    # (com.microsoft GatherBlockQuantized, ONNX Runtime >= 1.20; edgernn/export/int4.py), 64%
    # of int8's bytes; a table shared with another node or too narrow stays int8.
    embed_bits: int = 8

    def __post_init__(self) -> None:
        if self.exporter not in EXPORTERS:
            raise EdgeRNNError(f"unknown exporter {self.exporter!r}; choose one of {EXPORTERS}")
        if not self.tolerance > 0:
            raise EdgeRNNError(f"parity tolerance must be positive, got {self.tolerance}")
        if self.int8_tolerance is not None and not self.int8_tolerance >= 0:
            raise EdgeRNNError(f"int8 tolerance must be >= 0 or None, got {self.int8_tolerance}")
        if self.embed_bits not in EMBED_BITS:
            raise EdgeRNNError(
                f"embed_bits must be 8 (int8 tables) or 4 (4-bit tables), got {self.embed_bits!r}"
            )
