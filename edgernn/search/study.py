"""The Optuna study of a search: where it is stored, what it is named, how trials are chosen.

A study lives in an RDB storage (``OUTDIR/search.db`` by default), named from the teacher's
bytes, the data and every setting that changes a trial's result, so rerunning the same
command resumes it and a changed setting starts a new study beside it. Trials are sampled by
TPE, with the budget as a constraint, and cut short by successive halving on the valid drop
reported after each distillation epoch (``BudgetPruner``: never a trial already in budget).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import optuna
import sqlalchemy.exc
from optuna.pruners import BasePruner, SuccessiveHalvingPruner
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from edgernn.errors import EdgeRNNError
from edgernn.search.config import STORAGE_FILE
from edgernn.search.space import LADDER, default_params, seed_params
from edgernn.search.trial import CONSTRAINT_PER_TRIAL, TrialContext, TrialSettings, run_trial

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# A killed worker's RUNNING trial stops beating; after the grace period the next trial that
# starts marks it failed, and RetryFailedTrialCallback queues its params again once.
HEARTBEAT_S, GRACE_S = 20, 60
SQLITE_WAIT_S = 60  # workers sharing one SQLite file wait this long for its write lock
STORAGE_ATTEMPTS = 3
# TPE's own default of 10 random trials would be most of a 30-minute search on one core;
# the seeded ladder already spans the sizes, so TPE takes over after two more.
STARTUP_TRIALS = len(LADDER) + 2
QUEUE_WAIT_S = 30  # how long workers 1.. wait for worker 0 to take the queued trial


def storage_url(storage: str | None, outdir: str | Path) -> str:
    """``storage`` as given, or the SQLite file ``OUTDIR/search.db``."""
    if storage:
        return storage
    return f"sqlite:///{(Path(outdir) / STORAGE_FILE).resolve()}"


def study_name(settings: TrialSettings, data_source: str) -> str:
    """``TEACHER@DATA-DIGEST``: the digest covers the teacher's bytes and every setting of
    a trial, so only identical searches share a study.

    ``data_source`` is the DATA trials read (``--data``, else the one the teacher records).
    """
    teacher = Path(settings.teacher_file)
    data = Path(data_source.removeprefix("builtin:")).name or "data"
    recipe = {
        "teacher": hashlib.sha256(teacher.read_bytes()).hexdigest(),
        "data": data_source,
        "options": asdict(settings.options),
        "budget": settings.budget,
        "pinned": settings.pinned,
    }
    if settings.objective != "size":  # so the size studies of earlier versions still resume
        recipe["objective"] = settings.objective
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()
    return f"{teacher.stem}@{data}-{digest[:12]}"


class BudgetPruner(BasePruner):
    """Successive halving that only cuts trials outside the budget at the reported epoch.

    Plain successive halving ranks trials by their intermediate value alone, which would cut
    small students for learning slower than big ones; a trial already within budget is
    feasible and only its size matters, so it always runs to the end. So do the seeded
    trials: the default (plain compress's student), the reference every other trial is
    held to, and the ladder of smaller students, which distill fast and are measured whole
    (on builtin:ner a 1/16 student was cut at epoch 20, 1.3 points behind and still
    improving).
    """

    def __init__(self, budget: float, epochs: int):
        self.budget = budget
        # The first rung at half the epochs. Measured on builtin:sentiment (bi-LSTM teacher,
        # 25 epochs): at epoch 7 every student was 38-47 points behind, among them the
        # default student that ended 12 behind, so early epochs ranked nothing.
        first = max(1, math.ceil(epochs / 2))
        self.halving = SuccessiveHalvingPruner(min_resource=first, reduction_factor=3)

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        # Asked every time: successive halving records each trial's rung values as it is
        # asked, and the trials within budget are the ones the others must compare against.
        behind = self.halving.prune(study, trial)
        if trial.user_attrs.get("default") or trial.user_attrs.get("seeded"):
            return False
        return behind and trial.intermediate_values[step] > self.budget


def open_storage(url: str) -> RDBStorage:
    engine = {"connect_args": {"timeout": SQLITE_WAIT_S}} if url.startswith("sqlite") else {}
    try:
        return _rdb_storage(url, engine)
    except Exception as error:  # SQLAlchemy: a bad URL, a missing driver, no server
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EdgeRNNError(
            f"cannot open the search storage {url!r} ({first}); pass an Optuna RDB URL such as "
            "sqlite:///search.db"
        ) from None


def _rdb_storage(url: str, engine: dict) -> RDBStorage:
    # Processes started together race to create a new database's tables, and the loser's
    # CREATE or version row fails although the schema is then there: open it again.
    for attempt in range(STORAGE_ATTEMPTS - 1):
        try:
            return _storage_once(url, engine)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError):
            time.sleep(1.0 + attempt)
    return _storage_once(url, engine)


def _storage_once(url: str, engine: dict) -> RDBStorage:
    with warnings.catch_warnings():  # heartbeats are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RDBStorage(url, engine_kwargs=engine, **_heartbeat())


def _heartbeat() -> dict:
    # Optuna 4.9 renamed the stale-trial retry; both retry a killed worker's trial once.
    retry = {"heartbeat_interval": HEARTBEAT_S, "grace_period": GRACE_S}
    if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):
        callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
        return retry | {"heartbeat_stale_trial_callback": callback}
    callback = optuna.storages.RetryFailedTrialCallback(max_retry=1)
    return retry | {"failed_trial_callback": callback}


def load_study(url: str, name: str, settings: TrialSettings, seed: int) -> optuna.Study:
    """The study ``name`` in ``url``, created if new, with a sampler seeded for this process."""
    quiet_optuna()
    storage = open_storage(url)
    # Optuna 5 reads the constraint each trial sets (trial.set_constraint); 4 asks a function.
    constraints = {} if CONSTRAINT_PER_TRIAL else {"constraints_func": _constraints}
    with warnings.catch_warnings():  # constraints_func is marked experimental in Optuna 4
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=STARTUP_TRIALS, **constraints
        )
    return optuna.create_study(
        storage=storage,
        study_name=name,
        direction="minimize",
        sampler=sampler,
        pruner=BudgetPruner(settings.budget, settings.options.epochs),
        load_if_exists=True,
    )


def _constraints(trial: optuna.trial.FrozenTrial) -> list[float]:
    return [trial.user_attrs.get("constraint", float("inf"))]


def quiet_optuna() -> None:
    # One line per trial comes from edgernn (a failed one with its one-line reason); Optuna's
    # log would repeat it, a refused student with a whole traceback.
    optuna.logging.set_verbosity(logging.ERROR)


def finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def optimize(
    settings: TrialSettings,
    url: str,
    name: str,
    trials: int | None,
    deadline: float | None,
    seed: int,
    worker: int = 0,
    echo=None,
    share: int | None = None,
) -> None:
    """Run trials until the study holds ``trials`` finished ones or ``deadline`` (epoch s);
    at most ``share`` of them in this process when given.

    The sampler's seed mixes in the worker and the trials already stored, so a resumed or
    parallel worker does not replay the random start-up trials another already ran.
    """
    probe = load_study(url, name, settings, seed)
    done = finished(probe)
    study = load_study(url, name, settings, hash((seed, done, worker)) % 2**32)
    remaining = None if trials is None else trials - done
    if share is not None:
        remaining = share if remaining is None else min(share, remaining)
    timeout = None if deadline is None else deadline - time.time()
    if (remaining is not None and remaining <= 0) or (timeout is not None and timeout <= 0):
        return
    callbacks = [] if trials is None else [optuna.study.MaxTrialsCallback(trials, FINISHED)]
    if echo is not None:
        callbacks.append(lambda study, trial: echo(trial))
    if worker > 0:
        _wait_for_queued_trials(study)
    while True:
        try:
            study.optimize(
                lambda trial: run_trial(trial, settings),
                n_trials=remaining,
                timeout=None if deadline is None else max(0.0, deadline - time.time()),
                catch=(EdgeRNNError,),
                callbacks=callbacks,
                gc_after_trial=True,
            )
            return
        except ValueError as error:
            # Two processes may pop the same queued trial from an RDB storage (Optuna issue
            # 4621, SQLite has no SELECT FOR UPDATE); the one that ends second cannot record
            # it. Its result is the other's: carry on with the trials still to run.
            if "Cannot tell a" not in str(error):
                raise
            if remaining is not None:
                remaining -= 1
                if remaining <= 0:
                    return


def _wait_for_queued_trials(study: optuna.Study) -> None:
    """Let worker 0 take the queued default trial before this worker asks for one."""
    waited = 0.0
    while _default_waiting(study) and waited < QUEUE_WAIT_S:
        time.sleep(0.2)
        waited += 0.2


def _default_waiting(study: optuna.Study) -> bool:
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return any(trial.user_attrs.get("default") for trial in waiting)


def run_workers(settings, url, name, trials, deadline, seed, workers: int, echo=None) -> None:
    """``workers`` == 1: trials in this process; more: that many spawned worker processes.

    The trials still to run are split between the workers up front, so together they stop
    at ``trials`` (``MaxTrialsCallback`` also stops them should other commands share the
    study).
    """
    study = load_study(url, name, settings, seed)  # created once, before workers race to
    if not study.trials:
        _enqueue_seeds(study, settings)
    if workers == 1:
        optimize(settings, url, name, trials, deadline, seed, 0, echo)
        return
    remaining = None if trials is None else max(0, trials - finished(study))
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools
    processes = []
    for index in range(workers):
        share = None if remaining is None else _share(remaining, workers, index)
        if share == 0:
            continue
        args = (settings, url, name, trials, share, deadline, seed, index, echo is not None)
        processes.append(context.Process(target=_worker, args=args))
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        raise EdgeRNNError(
            f"{len(failed)} of {len(processes)} search workers failed (exit {failed[0]}); "
            "rerun the command to resume the study"
        )


def _enqueue_seeds(study: optuna.Study, settings: TrialSettings) -> None:
    teacher = TrialContext.load(settings.teacher_file, settings.data).teacher
    default = default_params(teacher.spec, settings.pinned)
    for params in seed_params(teacher.spec, settings.pinned):
        # skip_if_exists: another command sharing the storage may have queued them already.
        attrs = {"default": True} if params == default else {"seeded": True}
        study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=True)


def _share(remaining: int, workers: int, index: int) -> int:
    return remaining // workers + (1 if index < remaining % workers else 0)


def _worker(settings, url, name, trials, share, deadline, seed, index, announce) -> None:
    import torch

    torch.set_num_threads(1)  # N workers share the cores instead of each taking all of them
    echo = _print_trial if announce else None
    optimize(settings, url, name, trials, deadline, seed, index, echo, share)


def _print_trial(trial: optuna.trial.FrozenTrial) -> None:
    from edgernn.search.summary import trial_line

    print(trial_line(trial), flush=True)
