"""Pruning: structured (remove hidden units, the model shrinks) and unstructured (zero weights).

Example::

    from edgernn.prune import PruneConfig, prune, sparsity_report

    small = prune(teacher, PruneConfig(amount=0.5), data)            # hidden 128 -> 64
    sparse = prune(teacher, PruneConfig(amount=0.8, mode="unstructured"), data)
    sparsity_report(sparse)["encoder.rnn.weight_hh_l0"]               # 0.8

Exports resolve lazily: ``config`` is torch-free, so the command line reads its defaults
without importing torch.
"""

from __future__ import annotations

from edgernn.lazy import lazy_exports

_EXPORTS = {
    "PruneConfig": "edgernn.prune.config",
    "agp_sparsity": "edgernn.prune.config",
    "count_nonzero": "edgernn.prune.unstructured",
    "finetune": "edgernn.prune.stage",
    "prune": "edgernn.prune.stage",
    "select_units": "edgernn.prune.units",
    "shrink_hidden_units": "edgernn.prune.shrink",
    "sparsity_report": "edgernn.prune.unstructured",
    "unit_groups": "edgernn.prune.units",
    "unit_importance": "edgernn.prune.importance",
    "units_kept": "edgernn.prune.stage",
    "weight_targets": "edgernn.prune.unstructured",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
