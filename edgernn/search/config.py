"""What a budget search does (``SearchConfig``) and how its flags read; torch-free.

The budget is in the unit of ``edgernn.metrics.metric_drop`` (points for accuracy-like
metrics, percent relative for perplexity and MSE) and defaults to compress's own
``DEFAULT_TOLERANCE``, so ``--search`` keeps the accuracy plain compress would keep.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from edgernn.compress.config import DEFAULT_TOLERANCE
from edgernn.errors import EdgeRNNError

OBJECTIVES = ("size", "macs", "latency")  # edgernn.search.objective measures them
DEFAULT_TRIALS = 20  # the seeded ladder, TPE's random start, then TPE's own choices
STORAGE_FILE = "search.db"  # OUTDIR/search.db unless --storage names another study database
TRIALS_FOLDER = "search-trials"  # OUTDIR/search-trials/STUDY/trial-N.pt: each trial's student
# The dimensions a fixed compress flag pins (``--student-hidden 32`` searches everything else).
DIMENSIONS = ("cell", "layers", "bidirectional", "hidden", "embed", "prune", "int8")
DIMENSIONS += ("vocab", "rank", "embed_bits", "lr")
_UNITS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class SearchConfig:
    """Budgets, objective and metric budget of one search.

    Example::

        SearchConfig(trials=30, time_budget_s=1800, pinned={"cell": "gru"})
    """

    trials: int | None = DEFAULT_TRIALS  # finished trials the study should hold; None: no cap
    time_budget_s: float | None = None  # wall clock of this command's search; None: no limit
    objective: str = "size"
    budget: float | None = None  # most valid-metric loss vs the teacher; None: DEFAULT_TOLERANCE
    storage: str | None = None  # an Optuna RDB URL; None: sqlite:///OUTDIR/search.db
    workers: int = 1  # local worker processes on the same storage
    pinned: dict = field(default_factory=dict)  # DIMENSIONS name -> the value a flag fixed

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise EdgeRNNError(
                f"unknown objective {self.objective!r}; choose {', '.join(OBJECTIVES)}"
            )
        if self.trials is not None and self.trials < 1:
            raise EdgeRNNError(f"--trials must be at least 1, got {self.trials}")
        if self.time_budget_s is not None and not 0 < self.time_budget_s < math.inf:
            raise EdgeRNNError(f"--time-budget must be positive, got {self.time_budget_s:g} s")
        if self.trials is None and self.time_budget_s is None:
            raise EdgeRNNError("a search needs --trials or --time-budget to end")
        if self.budget is not None and not 0 <= self.budget < math.inf:
            raise EdgeRNNError(f"--budget must be >= 0 and finite, got {self.budget}")
        if self.workers < 1:
            raise EdgeRNNError(f"--workers must be at least 1, got {self.workers}")
        unknown = sorted(set(self.pinned) - set(DIMENSIONS))
        if unknown:
            raise EdgeRNNError(f"cannot pin {unknown}; pinnable: {', '.join(DIMENSIONS)}")

    def metric_budget(self, higher_is_better: bool) -> float:
        """The budget in ``metric_drop`` units for a metric of this direction."""
        return DEFAULT_TOLERANCE[higher_is_better] if self.budget is None else self.budget


def parse_duration(text: str) -> float:
    """Seconds in ``30m``, ``90s``, ``1.5h`` or a bare number of seconds.

    Raises:
        EdgeRNNError: anything else, or a duration that is not positive.

    Example::

        parse_duration("30m")   # 1800.0
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*", text.lower())
    if not match:
        raise EdgeRNNError(f"--time-budget {text!r} is not a duration; write e.g. 90s, 30m or 2h")
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise EdgeRNNError(f"--time-budget {text!r} must be longer than zero")
    return seconds
