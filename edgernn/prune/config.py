"""What pruning does and how gradually: a frozen, self-validating ``PruneConfig``."""

from __future__ import annotations

from dataclasses import dataclass

from edgernn.errors import EdgeRNNError

MODES = ("structured", "unstructured")
SCHEDULES = ("one-shot", "agp")
IMPORTANCES = ("norm", "activation")
# Weight kinds unstructured pruning may zero. Embeddings are left out by default: a token
# lookup reads one row whatever its zeros, so sparsity there saves no compute, and rare
# tokens' rows barely move in training, so their small magnitudes do not mean unimportance.
# Biases are never pruned: they are ~1% of the weights, and each one shifts a whole unit.
TARGETS = ("recurrent", "input", "linear", "embedding")
DEFAULT_TARGETS = ("recurrent", "input", "linear")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise EdgeRNNError(f"unknown prune {name} {value!r}; choose one of {', '.join(choices)}")


@dataclass(frozen=True)
class PruneConfig:
    """How to prune; see ``edgernn.prune.prune``.

    Example::

        PruneConfig(amount=0.8, mode="unstructured", schedule="agp", steps=5, epochs=2)
    """

    # structured: fraction of hidden units removed in every layer (and the decoder);
    # unstructured: fraction of every target weight tensor set to zero.
    amount: float = 0.5
    mode: str = "structured"  # structured shrinks the dense model; unstructured only zeroes
    # agp: Zhu & Gupta's cubic ramp, pruning fast while much is redundant and slowly near
    # the end, fine-tuning after every step; one-shot: prune once, then fine-tune.
    schedule: str = "agp"
    steps: int = 4  # pruning steps of the agp ramp; ignored by one-shot
    epochs: int = 2  # fine-tuning epochs after each step; 0 prunes without fine-tuning
    importance: str = "norm"  # structured: rank units by weight norm or mean |h| on data
    lr: float = 3e-3  # peak fine-tuning rate (one-cycle: warms up from lr / 25, ends near 0)
    targets: tuple[str, ...] = DEFAULT_TARGETS  # unstructured: which weight kinds to zero

    def __post_init__(self) -> None:
        if not 0.0 <= self.amount < 1.0:
            raise EdgeRNNError(f"prune amount must be in [0, 1), got {self.amount}")
        _check_choice("mode", self.mode, MODES)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("importance", self.importance, IMPORTANCES)
        if self.steps < 1:
            raise EdgeRNNError(f"prune steps must be at least 1, got {self.steps}")
        if self.epochs < 0:
            raise EdgeRNNError(f"fine-tuning epochs must be at least 0, got {self.epochs}")
        if self.lr <= 0:
            raise EdgeRNNError(f"fine-tuning learning rate must be positive, got {self.lr}")
        if not self.targets or isinstance(self.targets, str):
            raise EdgeRNNError(f"prune targets must be a non-empty tuple of {', '.join(TARGETS)}")
        for target in self.targets:
            _check_choice("target", target, TARGETS)
        if self.mode == "unstructured" and self.importance != "norm":
            raise EdgeRNNError(
                "importance only applies to structured pruning; unstructured pruning ranks "
                "single weights by magnitude"
            )


def agp_sparsity(step: int, steps: int, final: float, initial: float = 0.0) -> float:
    """Target of the automated gradual pruning schedule after ``step`` of ``steps``.

    ``s_t = s_f + (s_i - s_f) * (1 - t / n) ** 3`` (Zhu & Gupta 2017, with t0 = 0, dt = 1).

    Args:
        step: steps taken so far, 0..steps.
        steps: steps of the whole ramp (n).
        final: target reached at the last step (s_f).
        initial: target at step 0 (s_i).

    Returns:
        The fraction to prune after ``step`` steps.

    Example::

        [agp_sparsity(t, 4, 0.8) for t in range(5)]   # [0.0, 0.4625, 0.7, 0.7875, 0.8]
    """
    if not 0 <= step <= steps:
        raise ValueError(f"step must be in 0..{steps}, got {step}")
    return final + (initial - final) * (1.0 - step / steps) ** 3


def step_targets(config: PruneConfig, gradual: bool) -> list[float]:
    """The amount pruned after each step: the agp ramp, or just the final amount."""
    if config.schedule == "one-shot" or not gradual:
        return [config.amount]
    return [agp_sparsity(step, config.steps, config.amount) for step in range(1, config.steps + 1)]
