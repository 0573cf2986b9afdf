"""Benchmark harness: every candidate in a fresh subprocess, measured into one report.

Exports resolve lazily: ``python -m edgernn.bench.worker`` imports this package first, and
the measuring process must hold only the runtime under test (no torch for ONNX Runtime).

Example::

    from edgernn.bench import BenchConfig, bench, candidates_from_paths
    from edgernn.report import write_report

    report = bench(candidates_from_paths(["teacher.pt", "model.onnx"]), BenchConfig())
    write_report(report, "runs/bench")
"""

from __future__ import annotations

from edgernn.lazy import lazy_exports

_EXPORTS = {
    "BenchConfig": "edgernn.bench.config",
    "Candidate": "edgernn.bench.config",
    "TimingConfig": "edgernn.bench.config",
    "bench": "edgernn.bench.harness",
    "candidates_from_paths": "edgernn.bench.discover",
    "read_bundle": "edgernn.bench.discover",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
