"""The ``search`` section of the report: every trial, the Pareto front, the chosen trial.

Selection is honest: a trial is chosen on the valid split; the chosen model's test metric is
reported against the same budget, and a miss on test is said in a note with its size.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.trial import TrialState

from edgernn.atomic import write_atomic
from edgernn.metrics import metric_drop
from edgernn.search.objective import OBJECTIVES, shown

STATES = {
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


def trial_state(trial: optuna.trial.FrozenTrial) -> str:
    """complete (within budget on valid), infeasible, pruned, failed, running or waiting."""
    if trial.state is TrialState.COMPLETE:
        return "complete" if trial.user_attrs.get("constraint", 1.0) <= 0 else "infeasible"
    return STATES[trial.state]


def trial_record(trial: optuna.trial.FrozenTrial) -> dict:
    """One trial as the report lists it."""
    attrs = trial.user_attrs
    return {
        "number": trial.number,
        "state": trial_state(trial),
        "params": attrs.get("choices", trial.params),
        "valid_metric": attrs.get("valid_metric"),
        "valid_drop": attrs.get("valid_drop"),
        # Optuna gives a pruned trial its last intermediate value (a drop, not bytes).
        "objective": trial.value if trial.state is TrialState.COMPLETE else None,
        "precision": attrs.get("precision"),
        "note": attrs.get("error") or attrs.get("pruned_at"),
        "worker": attrs.get("worker"),
        "default": attrs.get("default", False),  # plain compress's student, queued first
    }


ATTRS = {"size": "size_bytes", "macs": "macs", "latency": "latency"}  # the trials' user attrs


def trial_line(trial: optuna.trial.FrozenTrial) -> str:
    """``trial 3: complete  gru x1 h12 e8 prune 0.25 int8  valid drop 0.4  ~1.2 KiB  3.1k MACs``."""
    record = trial_record(trial)
    params = record["params"]
    shape = " ".join(f"{name} {value}" for name, value in params.items())
    line = f"trial {record['number']}: {record['state']:<10} {shape}"
    if record["valid_drop"] is not None:
        line += f"  valid drop {record['valid_drop']:.3g}"
    for name in OBJECTIVES:  # what the trial measured: size and MACs always, latency if asked
        value = trial.user_attrs.get(ATTRS[name])
        if value is not None and record["objective"] is not None:
            line += f"  {shown(name, value)}"
    if record["note"]:
        line += f"  ({record['note']})"
    return line


def pareto_front(records: list[dict]) -> list[int]:
    """Numbers of the measured trials no other beats on both objective and valid drop."""
    measured = [r for r in records if r["state"] in ("complete", "infeasible")]

    def dominated(r: dict) -> bool:
        return any(
            o["objective"] <= r["objective"]
            and o["valid_drop"] <= r["valid_drop"]
            and (o["objective"], o["valid_drop"]) != (r["objective"], r["valid_drop"])
            for o in measured
        )

    front = [r for r in measured if not dominated(r)]
    return [r["number"] for r in sorted(front, key=lambda r: (r["objective"], r["number"]))]


def best_feasible(records: list[dict]) -> dict | None:
    """The smallest trial within budget on valid (then the least drop, then the first)."""
    feasible = [r for r in records if r["state"] == "complete"]
    if not feasible:
        return None
    return min(feasible, key=lambda r: (r["objective"], r["valid_drop"], r["number"]))


def write_search_section(
    report_json: str | Path, section: dict, fallback_bytes: int | None = None
) -> dict:
    """Add ``section`` as ``search`` to a written report.json (atomically replaced).

    The chosen model's ``measured_bytes`` are its shipped graphs' bytes as the report
    measured them (the step graph of a streaming model aside: it is a second form of the
    same weights; seq2seq counts its encoder and decoder); ``fallback_bytes`` (student.pt's)
    when the bundle has no graphs.

    Returns:
        The section as written.
    """
    path = Path(report_json)
    report = json.loads(path.read_text(encoding="utf-8"))
    chosen = section.get("chosen")
    if chosen is not None:
        finals = [
            row
            for row in report.get("models", [])
            if row.get("role") == "final"
            and row.get("graph") != "step"
            and row.get("format") != "c"  # a C target beside the graphs is not shipped with them
        ]
        # A job row (seq2seq, lm) times the whole bundle end to end: not one more file.
        shipped = [row["size_bytes"] for row in finals if not row.get("job")]
        chosen["measured_bytes"] = sum(shipped) if shipped else fallback_bytes
        chosen["measured_file"] = "bundle graphs" if shipped else "student.pt"
        _bundle_test_metric(chosen, finals, section)
    report["search"] = section
    write_atomic(path, (json.dumps(report, indent=1) + "\n").encode("utf-8"))
    return section


def _bundle_test_metric(chosen: dict, finals: list[dict], section: dict) -> None:
    """The shipped graphs' own test metric (the runtime's, which int8 kernels move a little)
    beside PyTorch's; the budget on test is judged on what ships."""
    scored = [row for row in finals if row.get("metric") is not None]
    if not scored:
        return
    # End to end where the bundle has a job row (seq2seq, lm), else the model graph.
    row = next((row for row in scored if row.get("job")), scored[0])
    drop = metric_drop(chosen["teacher_test"], row["metric"], section["metric"])
    chosen["bundle_test_metric"], chosen["bundle_test_drop"] = row["metric"], drop
    chosen["within_budget_on_test"] = drop <= section["budget"]
