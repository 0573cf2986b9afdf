"""The whole search: run the study, take the best trial within budget, describe it all.

The chosen trial's own compressed student (kept in ``OUTDIR/search-trials``) is the bundle;
one this machine does not hold (another machine's trial on a shared storage) is rebuilt.

``search_compress`` returns a ``Compressed`` like ``compress`` does (the caller publishes it
with ``publish_bundle``, the same bundle as a plain compress) plus the report's ``search``
section. When no trial is within budget the default student is compressed instead (with the
user's flags and compress's own per-stage guard) and a note says so: the command still
leaves a working bundle, and the section shows how close the trials came.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from optuna.trial import TrialState

from edgernn.checkpoint import load_checkpoint
from edgernn.compress.config import CompressOptions
from edgernn.compress.stages import Compressed, compress
from edgernn.errors import EdgeRNNError
from edgernn.metrics import drop_unit, metric_drop
from edgernn.search.config import TRIALS_FOLDER, SearchConfig
from edgernn.search.objective import LEAST, UNITS, shown
from edgernn.search.space import trial_options
from edgernn.search.study import load_study, run_workers, storage_url, study_name
from edgernn.search.summary import best_feasible, pareto_front, trial_record
from edgernn.search.trial import TrialContext, TrialSettings, measure, score
from edgernn.tasks import primary_metric


@dataclass
class SearchOutcome:
    """The chosen model, compressed, and the report's ``search`` section."""

    result: Compressed
    section: dict


def search_compress(
    teacher_file: str,
    outdir: str,
    config: SearchConfig,
    options: CompressOptions | None = None,
    data: str | None = None,
    device: str = "cpu",
    echo=None,
) -> SearchOutcome:
    """Search the student within ``config``'s budgets, then compress the chosen one.

    Args:
        teacher_file: the teacher checkpoint (every worker loads it).
        outdir: the bundle folder; the default study storage is ``outdir/search.db``.
        config: trials, time budget, objective, metric budget, storage, workers, pins.
        options: the user's other compress flags (each trial overrides the searched ones).
        data: DATA; default: the teacher's.
        device: where distillation trains.
        echo: called with each finished trial (in-process workers only).

    Returns:
        ``SearchOutcome``: publish ``.result``; add ``.section`` to the report.
    """
    options = options or CompressOptions()
    context = TrialContext.load(teacher_file, data)
    higher = primary_metric(context.teacher.spec.task)[1]
    budget = config.metric_budget(higher)
    trials_dir = str(Path(outdir) / TRIALS_FOLDER)
    settings = TrialSettings(
        teacher_file, data, options, budget, config.pinned, device, config.objective, trials_dir
    )
    source = data or context.teacher.meta.source or "recorded"
    url, name = storage_url(config.storage, outdir), study_name(settings, source)
    deadline = None if config.time_budget_s is None else time.time() + config.time_budget_s
    run_workers(settings, url, name, config.trials, deadline, options.seed, config.workers, echo)
    study = load_study(url, name, settings, options.seed)
    # Seeded trials a trial budget left queued ran nowhere: the next run of the command takes them.
    ran = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    records = [trial_record(trial) for trial in ran]
    section = {
        "study": name,
        "storage": url,
        "objective": config.objective,
        "objective_unit": UNITS[config.objective],
        "metric": context.metric,
        "budget": budget,
        "budget_unit": drop_unit(context.metric),
        "teacher_valid": context.teacher_valid,
        "trials": records,
        "pareto_front": pareto_front(records),
    }
    chosen = best_feasible(records)
    if chosen is None:
        result = compress(context.teacher, options.config(progress=False), data, device)
        section["chosen"] = None
        result.notes.append(_no_feasible_note(records, budget, context.metric))
        result.notes.append(_front_note(section))
        return SearchOutcome(result, section)
    chosen_options = trial_options(options, chosen["params"])
    saved = _saved_result(next(t for t in ran if t.number == chosen["number"]))
    if saved is None:
        measured = measure(context, chosen_options, data, device)
    else:
        measured = score(context, saved, chosen_options.config(progress=False))
    section["chosen"] = _chosen(chosen, measured, budget, context.metric)
    measured.result.notes.extend(_search_notes(section))
    return SearchOutcome(measured.result, section)


def _saved_result(trial) -> Compressed | None:
    """The trial's own compressed student when this machine has it; None: train it again.

    A trial another machine ran (a shared ``--storage``) or one whose file is gone or
    damaged is rebuilt from its params, as the search did before students were kept.
    """
    path = trial.user_attrs.get("checkpoint")
    if path is None or not Path(path).is_file():
        return None
    try:
        return Compressed.from_checkpoint(load_checkpoint(path))
    except EdgeRNNError:
        return None


def _chosen(record: dict, measured, budget: float, metric: str) -> dict:
    # Chosen on valid, reported on test: the test drop is the honest estimate.
    rows = measured.result.rows
    teacher_test, final_test = rows[0].metric, [r for r in rows if r.kept][-1].metric
    test_drop = metric_drop(teacher_test, final_test, metric)
    return {
        "number": record["number"],
        "params": record["params"],
        "estimated_bytes": measured.size_bytes,
        "macs": measured.macs,
        "objective": record["objective"],
        "measured_bytes": None,  # the bundle's shipped graphs, filled in once written
        "precision": measured.precision,
        "trial_valid_drop": record["valid_drop"],
        "valid_metric": measured.valid_metric,
        "valid_drop": measured.valid_drop,
        "teacher_test": teacher_test,
        "test_metric": final_test,
        "test_drop": test_drop,
        "within_budget_on_test": test_drop <= budget,
    }


def _search_notes(section: dict) -> list[str]:
    chosen, unit, budget = section["chosen"], section["budget_unit"], section["budget"]
    counts = _state_counts(section["trials"])
    params = ", ".join(f"{name} {value}" for name, value in chosen["params"].items())
    notes = [
        f"search: {len(section['trials'])} trials ({counts}); chose trial {chosen['number']} "
        f"({params}), {LEAST[section['objective']]} within {budget:g} {unit} on valid",
        f"search: the chosen model loses {chosen['valid_drop']:.3g} {unit} to the teacher on "
        f"valid, {chosen['test_drop']:.3g} on test (below 0: it scores better)",
    ]
    notes.append(_front_note(section))
    if abs(chosen["valid_drop"] - chosen["trial_valid_drop"]) > 1e-9:
        notes.append(
            f"search: rebuilt, the chosen model measured {chosen['valid_drop']:.3g} {unit} on "
            f"valid where its trial measured {chosen['trial_valid_drop']:.3g}"
        )
    if not chosen["within_budget_on_test"]:
        miss = chosen["test_drop"] - budget
        notes.append(
            f"search: the chosen model misses the budget on test by {miss:.3g} {unit} (chosen "
            "on valid; more valid data, or a smaller --budget, leaves more margin)"
        )
    return notes


def _front_note(section: dict) -> str:
    by_number = {record["number"]: record for record in section["trials"]}
    objective = section["objective"]
    points = ", ".join(
        f"trial {number} {shown(objective, by_number[number]['objective'])} "
        f"{by_number[number]['valid_drop']:.3g}"
        for number in section["pareto_front"]
    )
    return (
        f"search: Pareto front ({objective}, valid loss in {section['budget_unit']}): "
        f"{points or 'no trial measured'}"
    )


def _no_feasible_note(records: list[dict], budget: float, metric: str) -> str:
    measured = [r["valid_drop"] for r in records if r["valid_drop"] is not None]
    closest = f"; closest {min(measured):.3g}" if measured else ""
    return (
        f"search: no trial of {len(records)} stayed within {budget:g} {drop_unit(metric)} on "
        f"valid{closest}; shipped the default student instead (more --trials, a larger "
        "--budget or more --epochs may find one)"
    )


def _state_counts(records: list[dict]) -> str:
    counts: dict[str, int] = {}
    for record in records:
        counts[record["state"]] = counts.get(record["state"], 0) + 1
    return ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
