"""What int8 quantization does (``QuantizeConfig``) and what it did (``QuantPlan``).

Torch-free, like every config: the command line reads its defaults without importing torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from edgernn.errors import EdgeRNNError

KINDS = ("rnn", "linear", "embedding")


@dataclass(frozen=True)
class QuantizeConfig:
    """Which layers become int8, and how much metric one layer may cost."""

    kinds: tuple[str, ...] = KINDS  # layer types to quantize
    # Largest metric loss one layer may cause when quantized alone (points for accuracy-like
    # metrics, percent relative for perplexity/MSE), measured on the valid split; layers above
    # it stay fp32. None skips the measurement and quantizes every supported layer.
    threshold: float | None = 0.5

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown:
            raise EdgeRNNError(f"unknown layer kinds {unknown}; choose from {', '.join(KINDS)}")
        if self.threshold is not None and self.threshold < 0:
            raise EdgeRNNError(f"sensitivity threshold must be >= 0, got {self.threshold}")


@dataclass(frozen=True)
class QuantPlan:
    """Which layers run int8; stored in compressed checkpoints and re-applied on load."""

    int8: tuple[str, ...]  # module names, as in ``model.named_modules()``
    fp32: dict[str, str] = field(default_factory=dict)  # module name -> why it stays float
    sensitivity: dict[str, float] = field(default_factory=dict)  # metric loss, layer alone
    backend: str = "torch.dynamic.int8"

    def to_dict(self) -> dict:
        return asdict(self) | {"int8": list(self.int8)}

    @classmethod
    def from_dict(cls, values: dict) -> QuantPlan:
        return cls(**values | {"int8": tuple(values["int8"])})
