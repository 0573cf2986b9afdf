"""Compress to a budget: search the student for the smallest artifact that keeps the metric.

``edgernn compress MODEL --search`` runs an Optuna study (TPE sampler, successive-halving
pruner fed the valid metric after every distillation epoch) over the student's cell, layers,
direction, hidden and embedding widths, the structured pruning fraction and int8 on/off.
Each trial is a whole ``edgernn.compress.compress`` run; the best trial within the metric
budget on the valid split is rebuilt and finished like a plain compress, and its report gets
a ``search`` section (every trial, the Pareto front, the chosen trial, its test metric).

``config`` (torch-free) holds the settings and the flag parsing, ``space`` the searched
dimensions, ``trial`` one trial's work, ``study`` the Optuna study (storage, sampler,
pruner, worker processes), ``summary`` the report section and ``run`` the whole search.

Example::

    from edgernn.search import SearchConfig, search_compress

    outcome = search_compress("teacher.pt", "runs/small", SearchConfig(trials=20))
    with folder_lock("runs/small"):
        publish_bundle(outcome.result, "runs/small", "teacher.pt")
"""

from __future__ import annotations

from edgernn.lazy import lazy_exports

_EXPORTS = {
    "SearchConfig": "edgernn.search.config",
    "parse_duration": "edgernn.search.config",
    "search_compress": "edgernn.search.run",
    "write_search_section": "edgernn.search.summary",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
