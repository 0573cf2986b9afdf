"""Pruning: structured (remove hidden units, the model shrinks) and unstructured (zero weights).

Example::

    from edgernn.prune import PruneConfig, prune, sparsity_report

    small = prune(teacher, PruneConfig(amount=0.5), data)            # hidden 128 -> 64
    sparse = prune(teacher, PruneConfig(amount=0.8, mode="unstructured"), data)
    sparsity_report(sparse)["encoder.rnn.weight_hh_l0"]               # 0.8
"""

from edgernn.prune.config import PruneConfig, agp_sparsity
from edgernn.prune.importance import unit_importance
from edgernn.prune.shrink import shrink_hidden_units
from edgernn.prune.stage import finetune, prune, units_kept
from edgernn.prune.units import select_units, unit_groups
from edgernn.prune.unstructured import count_nonzero, sparsity_report, weight_targets

__all__ = [
    "PruneConfig",
    "agp_sparsity",
    "count_nonzero",
    "finetune",
    "prune",
    "select_units",
    "shrink_hidden_units",
    "sparsity_report",
    "unit_groups",
    "unit_importance",
    "units_kept",
    "weight_targets",
]
