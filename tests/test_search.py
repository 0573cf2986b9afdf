"""`edgernn compress --search`: the Optuna budget search, end to end and in its parts."""

import json
import shutil
import subprocess
import sys
import time

import optuna
import pytest
import sqlalchemy
import torch
from conftest import run_cli

import edgernn.search.run
from edgernn.checkpoint import load_checkpoint
from edgernn.compress.config import CompressOptions
from edgernn.config import ModelSpec
from edgernn.errors import EdgeRNNError
from edgernn.report.schema import schema_problems
from edgernn.search.config import SearchConfig, parse_duration
from edgernn.search.study import BudgetPruner
from edgernn.search.summary import best_feasible, pareto_front

SEARCH = ["--search", "--epochs", "1", "--quiet", "--no-export"]
STATES = {"complete", "infeasible", "pruned", "failed"}
CLI = "from edgernn.cli import main; main()"


def _ran(out):
    """The trials of the study in ``out`` that ran (seeded trials not yet run are queued)."""
    (summary,) = optuna.get_all_study_summaries(f"sqlite:///{out / 'search.db'}")
    study = optuna.load_study(study_name=summary.study_name, storage=f"sqlite:///{out}/search.db")
    return [trial for trial in study.trials if trial.state != optuna.trial.TrialState.WAITING]


def test_search_end_to_end_writes_the_study_and_the_search_section(teacher, tmp_path):
    out = tmp_path / "bundle"
    result = run_cli("compress", teacher, *SEARCH, "--trials", "2", "--json", "-o", out)
    assert result.exit_code == 0, result.output
    assert (out / "search.db").is_file() and (out / "student.pt").is_file()
    report = json.loads((out / "report.json").read_text())
    assert schema_problems(report) == []
    search = report["search"]
    assert len(search["trials"]) == 2
    assert {trial["state"] for trial in search["trials"]} <= STATES
    assert search["metric"] == "accuracy" and search["budget"] == 1.0
    assert set(search["pareto_front"]) <= {trial["number"] for trial in search["trials"]}
    chosen = search["chosen"]
    trial = search["trials"][chosen["number"]]
    assert trial["state"] == "complete" and trial["params"] == chosen["params"]
    assert chosen["valid_drop"] <= search["budget"]
    assert chosen["measured_file"] == "student.pt" and chosen["measured_bytes"] > 0
    assert chosen["within_budget_on_test"] == (chosen["test_drop"] <= search["budget"])
    assert any(note.startswith("search: 2 trials") for note in report["notes"])
    # A new study starts from plain compress's student: its shape, 1/4 of the parameters.
    default = search["trials"][0]
    assert default["default"] is True and default["params"]["cell"] == "lstm"
    assert default["params"]["prune"] == 0.25 and default["params"]["int8"] is True
    assert any(note.startswith("search: Pareto front") for note in report["notes"])
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["search"]["number"] == chosen["number"]
    # The bundle is the chosen trial's own student.
    assert report["models"][1]["params"] < report["models"][0]["params"]
    kept = out / "search-trials" / search["study"] / f"trial-{chosen['number']}.pt"
    kept, shipped = load_checkpoint(kept).state_dict, load_checkpoint(out / "student.pt").state_dict
    assert kept.keys() == shipped.keys()
    assert all(torch.equal(kept[name], shipped[name]) for name in kept)


def test_the_chosen_trial_is_not_trained_again_unless_its_student_is_gone(
    teacher, tmp_path, monkeypatch
):
    out, rebuilt = tmp_path / "bundle", []
    real = edgernn.search.run.measure
    monkeypatch.setattr(
        "edgernn.search.run.measure", lambda *args: rebuilt.append(1) or real(*args)
    )
    first = run_cli("compress", teacher, *SEARCH, "--trials", "1", "-o", out)
    assert first.exit_code == 0, first.output
    assert rebuilt == []
    shutil.rmtree(out / "search-trials")
    again = run_cli("compress", teacher, *SEARCH, "--trials", "1", "-o", out)
    assert again.exit_code == 0, again.output
    assert rebuilt == [1]  # resumed with nothing left to run: the chosen one is rebuilt


def test_each_distillation_epoch_is_reported_to_the_pruner(teacher, tmp_path):
    out = tmp_path / "bundle"
    args = ["--search", "--epochs", "2", "--quiet", "--no-export", "--trials", "1"]
    result = run_cli("compress", teacher, *args, "-o", out)
    assert result.exit_code == 0, result.output
    (trial,) = _ran(out)
    assert sorted(trial.intermediate_values) == [1, 2]


def test_rerunning_resumes_the_study(teacher, tmp_path):
    out = tmp_path / "bundle"
    first = run_cli("compress", teacher, *SEARCH, "--trials", "1", "-o", out)
    assert first.exit_code == 0, first.output
    (before,) = _ran(out)
    again = run_cli("compress", teacher, *SEARCH, "--trials", "2", "-o", out)
    assert again.exit_code == 0, again.output
    trials = _ran(out)
    assert len(trials) == 2
    # Trial 0 is the stored one, not run again.
    assert trials[0].datetime_complete == before.datetime_complete
    assert trials[0].params == before.params
    report = json.loads((out / "report.json").read_text())
    assert [trial["number"] for trial in report["search"]["trials"]] == [0, 1]


def test_fixed_flags_pin_their_dimension(teacher, tmp_path):
    out = tmp_path / "bundle"
    args = ["--student-hidden", "4", "--student-cell", "gru", "--no-quantize", "--lr", "0.005"]
    result = run_cli("compress", teacher, *SEARCH, *args, "--trials", "2", "-o", out)
    assert result.exit_code == 0, result.output
    trials = json.loads((out / "report.json").read_text())["search"]["trials"]
    for trial in trials:
        assert trial["params"]["hidden"] == 4 and trial["params"]["cell"] == "gru"
        assert trial["params"]["lr"] == 0.005
        assert trial["params"]["int8"] is False and trial["precision"] == "fp32"


def test_no_trial_within_budget_falls_back_to_the_default_student(teacher, tmp_path, monkeypatch):
    monkeypatch.setattr("edgernn.search.run.best_feasible", lambda records: None)
    out = tmp_path / "bundle"
    result = run_cli("compress", teacher, *SEARCH, "--trials", "1", "-o", out)
    assert result.exit_code == 0, result.output
    assert "no trial of 1 stayed within 1 points on valid" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["search"]["chosen"] is None
    assert any("shipped the default student instead" in note for note in report["notes"])


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--search", "--trials", "0"], "Invalid value for '--trials'"),
        (["--search", "--time-budget", "abc"], "is not a duration"),
        (["--search", "--time-budget", "0m"], "must be longer than zero"),
        (["--search", "--objective", "speed"], "Invalid value for '--objective'"),
        (["--search", "--workers", "0"], "Invalid value for '--workers'"),
        (["--trials", "3"], "--trials only applies with --search"),
        (["--search", "--no-distill"], "--no-distill does not go with --search"),
        (["--search", "--tolerance", "1"], "--tolerance does not go with --search"),
        (["--search", "--tolerance", "0"], "--tolerance does not go with --search"),
        (["--search", "--storage", "nosuchdb://x"], "cannot open the search storage"),
    ],
)
def test_bad_search_settings_are_one_clear_line(args, fragment, teacher, tmp_path):
    out = tmp_path / "bundle"
    result = run_cli("compress", teacher, "--quiet", *args, "-o", out)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert fragment in result.output, result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1


def _wait_for_a_started_trial(database, process, timeout_s=300):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        if database.exists():
            try:
                (summary,) = optuna.get_all_study_summaries(f"sqlite:///{database}")
                study = optuna.load_study(
                    study_name=summary.study_name, storage=f"sqlite:///{database}"
                )
                if any("worker" in trial.user_attrs for trial in study.trials):
                    return
            except (ValueError, sqlalchemy.exc.SQLAlchemyError):
                pass  # the first process is still creating the study
        time.sleep(0.2)


@pytest.mark.slow
def test_two_processes_share_one_study(teacher, tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    commands = [
        [sys.executable, "-c", CLI, "compress", str(teacher), *SEARCH, "--trials", str(trials)]
        + ["--storage", storage, "-o", str(tmp_path / f"bundle{trials}")]
        for trials in (2, 4)
    ]
    # The second starts once the first holds a trial and asks for more trials than the first
    # stops at, so each runs some however the two are scheduled.
    first = subprocess.Popen(commands[0], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _wait_for_a_started_trial(tmp_path / "shared.db", first)
    second = subprocess.Popen(commands[1], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    runs = [first, second]
    outputs = [run.communicate(timeout=600)[0].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    (summary,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
    assert len(trials) >= 4
    assert len({trial.user_attrs["worker"] for trial in trials}) == 2
    assert not (tmp_path / "bundle2" / "search.db").exists()
    report = json.loads((tmp_path / "bundle4" / "report.json").read_text())
    assert report["search"]["storage"] == storage


@pytest.mark.slow
def test_search_bundle_measures_the_shipped_graphs(teacher, tmp_path):
    out = tmp_path / "bundle"
    result = run_cli("compress", teacher, "--search", "--epochs", "1", "--quiet", "--trials", "2",
                  "--workers", "2", "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert schema_problems(report) == []
    chosen = report["search"]["chosen"]
    graph = "model.int8.onnx" if chosen["precision"] == "int8" else "model.onnx"
    assert chosen["measured_file"] == "bundle graphs"
    assert chosen["measured_bytes"] == (out / graph).stat().st_size
    # The budget on test is judged on the shipped graph's own score.
    final = next(row for row in report["models"] if row["role"] == "final")
    assert chosen["bundle_test_metric"] == final["metric"]
    assert chosen["within_budget_on_test"] == (chosen["bundle_test_drop"] <= 1.0)
    assert len(report["search"]["trials"]) == 2


@pytest.mark.parametrize("objective", ["macs", "latency"])
def test_search_minimises_macs_or_latency(objective, teacher, tmp_path):
    out = tmp_path / "bundle"
    result = run_cli("compress", teacher, *SEARCH, "--trials", "2", "--objective", objective,
                  "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    search = json.loads((out / "report.json").read_text())["search"]
    unit = {"macs": "multiply-accumulates", "latency": "ms, p50"}[objective]
    assert search["objective"] == objective and search["objective_unit"].startswith(unit)
    for trial in _ran(out):
        if trial.state is optuna.trial.TrialState.COMPLETE:
            # The value minimised is what the trial measured, MACs or milliseconds.
            assert trial.value == trial.user_attrs["macs" if objective == "macs" else "latency"]
            assert 0 < trial.value < (1e7 if objective == "macs" else 1e3)
    # Another objective is another study: it does not resume this one's trials.
    again = run_cli("compress", teacher, *SEARCH, "--trials", "1", "-o", out)
    assert again.exit_code == 0, again.output
    assert len(optuna.get_all_study_summaries(f"sqlite:///{out / 'search.db'}")) == 2


def test_macs_count_each_weight_once_per_step_and_a_pooled_head_once():
    from edgernn.models import build_model
    from edgernn.search.objective import macs

    spec = ModelSpec("classify", vocab_size=50, hidden=8, embed=6, num_outputs=3)
    state = build_model(spec).state_dict()
    recurrent = 4 * 8 * (6 + 8)  # LSTM gates x (input + hidden) weights, per step
    assert macs(state, "classify", 10) == 10 * recurrent + 3 * 8  # the table costs nothing
    tagger = build_model(ModelSpec("tag", vocab_size=50, hidden=8, embed=6, num_outputs=3))
    assert macs(tagger.state_dict(), "tag", 10) == 10 * (recurrent + 3 * 8)


def test_durations_read_seconds_minutes_and_hours():
    assert parse_duration("90s") == 90 and parse_duration("30m") == 1800
    assert parse_duration("1.5h") == 5400 and parse_duration("45") == 45
    for bad in ("abc", "10d", "-5m", ""):
        with pytest.raises(EdgeRNNError, match="not a duration"):
            parse_duration(bad)


def test_search_config_refuses_what_cannot_run():
    with pytest.raises(EdgeRNNError, match="choose size, macs, latency"):
        SearchConfig(objective="speed")
    with pytest.raises(EdgeRNNError, match="needs --trials or --time-budget"):
        SearchConfig(trials=None)
    with pytest.raises(EdgeRNNError, match="cannot pin"):
        SearchConfig(pinned={"attention": "luong"})
    assert SearchConfig().metric_budget(True) == 1.0
    assert SearchConfig().metric_budget(False) == 2.0
    assert SearchConfig(budget=0.5).metric_budget(False) == 0.5


def _record(number, state, objective, drop):
    return {"number": number, "state": state, "objective": objective, "valid_drop": drop}


def test_pareto_front_and_the_choice_within_budget():
    records = [
        _record(0, "complete", 100.0, 0.5),
        _record(1, "infeasible", 50.0, 3.0),
        _record(2, "complete", 80.0, 0.9),
        _record(3, "complete", 120.0, 0.6),  # bigger and worse than 0
        _record(4, "pruned", None, None),
    ]
    assert pareto_front(records) == [1, 2, 0]
    assert best_feasible(records)["number"] == 2
    assert best_feasible([records[1], records[4]]) is None


def test_the_pruner_never_cuts_a_trial_within_budget():
    study = optuna.create_study(pruner=BudgetPruner(budget=1.0, epochs=2))
    for drops in ([0.1, 0.1], [0.2, 0.2], [0.3, 0.3]):
        trial = study.ask()
        for step, drop in enumerate(drops, start=1):
            trial.report(drop, step)
            trial.should_prune()  # successive halving records each rung as it is asked
        study.tell(trial, 1.0)
    trial = study.ask()
    trial.report(0.9, 1)  # worst so far, but within budget
    assert not trial.should_prune()
    worse = study.ask()
    worse.report(5.0, 1)  # outside budget and behind the others
    assert worse.should_prune()
    for seed in ({"default": True}, {"seeded": True}):
        study.enqueue_trial({}, user_attrs=seed)
        seeded = study.ask()
        seeded.report(5.0, 1)  # as bad, but plain compress's student or the ladder's
        assert not seeded.should_prune()


def test_the_first_rung_waits_for_half_the_epochs():
    assert BudgetPruner(budget=1.0, epochs=8).halving._min_resource == 4
    assert BudgetPruner(budget=1.0, epochs=1).halving._min_resource == 1


def _spec(**fields):
    from edgernn.config import ModelSpec

    return ModelSpec(vocab_size=20, num_outputs=3, hidden=32, embed=16, **fields)


def test_a_language_model_student_stays_one_way():
    from edgernn.search.space import suggest_choices

    study = optuna.create_study()
    lm = suggest_choices(study.ask(), _spec(task="lm"), {})
    assert lm["bidirectional"] is False
    two_way = study.ask()
    suggest_choices(two_way, _spec(task="classify", bidirectional=True), {})
    assert "bidirectional" in two_way.params
    one_way = study.ask()
    suggest_choices(one_way, _spec(task="classify", bidirectional=False), {})
    assert "bidirectional" not in one_way.params


def test_pinned_dimensions_are_not_searched_and_the_default_respects_them():
    from edgernn.search.space import default_params, suggest_choices

    teacher, pinned = _spec(task="classify"), {"hidden": 8, "int8": False}
    trial = optuna.create_study().ask()
    choices = suggest_choices(trial, teacher, pinned)
    assert choices["hidden"] == 8 and choices["int8"] is False
    assert not {"hidden", "int8"} & set(trial.params)
    default = default_params(teacher, pinned)
    assert "hidden" not in default and default["cell"] == "lstm" and default["prune"] == 0.25
    assert 2 <= default["embed"] <= 16


def test_a_new_study_is_seeded_with_the_default_student_and_smaller_ones_of_its_shape():
    from edgernn.distill.student import count_params, student_spec
    from edgernn.search.space import LADDER_LR, default_params, seed_params, trial_options

    teacher = _spec(task="classify")
    seeds = seed_params(teacher, {})
    assert seeds[0] == default_params(teacher, {}) and len(seeds) >= 3
    sizes, rates, pruned = [], [], []
    for params in seeds:
        assert (params["cell"], params["layers"]) == ("lstm", 1)
        config = trial_options(CompressOptions(), params | {"bidirectional": False}).config()
        student = student_spec(teacher, config.student, None)
        sizes.append(count_params(student))
        rates.append(config.distill.train.lr)
        pruned.append(config.prune.amount if config.prune else 0.0)
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)
    # Plain compress's own learning rate and pruning, then smaller students distilled at a
    # larger rate and not pruned.
    assert rates == [CompressOptions().lr] + [LADDER_LR] * (len(seeds) - 1)
    assert pruned == [CompressOptions().prune] + [0.0] * (len(seeds) - 1)
    # Pinned widths leave one shape to seed: as plain compress trains it and as the ladder
    # does, or once when the rate and pruning are pinned too.
    assert len(seed_params(teacher, {"hidden": 4, "embed": 4})) == 2
    assert len(seed_params(teacher, {"hidden": 4, "embed": 4, "lr": 0.02, "prune": 0.5})) == 1


def test_token_models_search_the_embedding_and_numeric_ones_do_not():
    from edgernn.search.space import RANK_SHARES, VOCAB_COVERAGES, suggest_choices, trial_options

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        choices = suggest_choices(trial, _spec(task="classify"), {})
        assert trial.params["vocab"] in VOCAB_COVERAGES and trial.params["rank"] in RANK_SHARES
        assert 0 <= choices["rank"] <= choices["embed"] and choices["embed_bits"] in (4, 8)
        options = trial_options(CompressOptions(), choices)
        assert (options.embed_rank, options.embed_bits) == (choices["rank"], choices["embed_bits"])
        assert options.vocab_coverage == (
            None if trial.params["vocab"] == 1.0 else choices["vocab"]
        )
        options.config()  # every combination is a valid compress setting
        seen.add(choices["rank"] > 0)
    assert seen == {True, False}
    lm = study.ask()
    assert suggest_choices(lm, _spec(task="lm"), {})["vocab"] is None  # its vocab is its output
    assert "vocab" not in lm.params
    numeric = study.ask()
    spec = ModelSpec(task="regress", input_size=3, hidden=32)
    assert suggest_choices(numeric, spec, {})["rank"] == 0
    assert not {"vocab", "rank", "embed_bits"} & set(numeric.params)


def test_an_embedding_flag_pins_its_dimension():
    from edgernn.search.space import suggest_choices

    trial = optuna.create_study().ask()
    choices = suggest_choices(trial, _spec(task="classify"), {"rank": 4, "embed_bits": 4})
    assert (choices["rank"], choices["embed_bits"]) == (4, 4)
    assert not {"rank", "embed_bits"} & set(trial.params)
