"""What the C target writes: the precision of its weights and activations, and whether it
checks them."""

from __future__ import annotations

from dataclasses import dataclass

from edgernn.errors import EdgeRNNError

PRECISIONS = ("int8", "fp32")


@dataclass(frozen=True)
class CExportConfig:
    """How ``export_c`` writes a model as C99 source.

    Example::

        CExportConfig(precision="fp32")
    """

    # int8: int8 weight rows with one fp32 scale each, float activations (a quarter of the
    # flash); fp32: every weight as float.
    precision: str = "int8"
    # Compile the generated code with the host's cc and compare it with PyTorch on random
    # sequences; skipped (and said so) when no C compiler is found.
    verify: bool = True
    # No floating point at run time, for MCUs without an FPU: the int8 weight rows with
    # integer multiplier + shift scales, activations in fixed point (int16 Q12, int32 sums),
    # sigmoid/tanh from a table, fixed-point inputs and outputs (model.h states their Q
    # formats). Needs precision int8.
    integer_only: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise EdgeRNNError(
                f"unknown precision {self.precision!r} for the C target; choose "
                f"{' or '.join(PRECISIONS)}"
            )
        if self.integer_only and self.precision != "int8":
            raise EdgeRNNError(
                "integer-only C code has int8 weights; drop --no-int8 (precision fp32)"
            )
