"""A study's records: create or load the Optuna study and its one MLflow parent run, settle
what an earlier process left open, and the attributes a study carries."""

from __future__ import annotations

from typing import Any

import optuna

from tuner.config import keys, trial_attrs
from tuner.config.goals import best_rule
from tuner.config.space import SearchSpace
from tuner.contract.datafiles import recordable
from tuner.reports import ranking as report
from tuner.runtime.recovery import fail_dead_trials
from tuner.storage.databases import store_lock
from tuner.storage.locations import HOME, prepare_local_folders
from tuner.storage.proxy import ProxiedStorage, check_study_in
from tuner.storage.studies import open_storage, read_studies
from tuner.study._config import Prepared, SearchConfig
from tuner.study.continued import LearnsInSpace
from tuner.study.samplers import make_pruner, make_sampler, sampler_seed, this_process
from tuner.study.warmstart import enqueue_warm_start, parse_sources
from tuner.tracking import StudyTracker
from tuner.training.folds import fold_count
from tuner.training.preemption import stale_trial_handler


def open_record(prepared: Prepared, config: SearchConfig) -> tuple[optuna.Study, StudyTracker]:
    """Create or load the study and find or create its one parent run: the first thing
    a search creates, once every input has been checked."""
    space = prepared.space
    prepare_local_folders(prepared.storage, prepared.tracking_uri, prepared.artifact_root)
    with store_lock(prepared.storage, prepared.tracking_uri):
        tracker = StudyTracker(  # its client makes a local MLflow database on first use
            prepared.tracking_uri,
            prepared.name,
            prepared.artifact_root,
            model_name=prepared.model_name,
            tags=prepared.lineage,
        )
        study = _open_study(prepared, config)
        _record_study_attrs(study, prepared, config)
        _enqueue(study, prepared, config)
        parent_run_id = tracker.open_study(
            _parent_params(prepared, config),
            {keys.TASK_TAG: prepared.task.name, keys.METRIC_TAG: space.metric},
        )
        study.set_user_attr(keys.PARENT_RUN_ID, parent_run_id)
        tracker.set_runs_view(space.metric, [spec.name for spec in space.params])
    settle_leftovers(study, tracker, config.max_retries, config.heartbeat)
    return study, tracker


def _open_study(prepared: Prepared, config: SearchConfig) -> optuna.Study:
    """The Optuna study, created or loaded, with its pruner and this process's sampler."""
    space = prepared.space
    settings = {**prepared.task.defaults, **space.fixed}
    steps = int(settings["max_epochs"]) * fold_count(settings)  # a trial's folds in a row
    existed = prepared.name in read_studies(prepared.storage)
    storage = open_storage(
        prepared.storage,
        config.heartbeat,
        stale_trial_handler(prepared.tracking_uri, config.max_retries),
        config.storage_proxy,
    )
    study = optuna.create_study(
        study_name=prepared.name,
        storage=storage,
        directions=space.directions,
        load_if_exists=True,
        pruner=_pruner(config.pruner, steps),
    )
    if isinstance(storage, ProxiedStorage):
        check_study_in(storage.direct, study)
    if not existed:
        study.set_user_attr(keys.CREATED_BY, this_process())
    seed = sampler_seed(study, config.seed, config.worker_index)
    study.sampler = make_sampler(config.sampler, seed, config.trials, space.constraints)
    if existed and config.allow_changes:  # earlier trials may lie outside the new space
        study.sampler = LearnsInSpace(study.sampler, space)
    return study


def _enqueue(study: optuna.Study, prepared: Prepared, config: SearchConfig) -> None:
    """Trials that run before the sampler's: queued fits, warm-start configurations, the
    space's first trial; each said in a note."""
    for params, attrs in prepared.queued:
        study.enqueue_trial(dict(params), user_attrs=dict(attrs), skip_if_exists=True)
    sources = parse_sources(config.warm_start)
    notes = enqueue_warm_start(study, sources, prepared.space, config.warm_start_top)
    notes += _enqueue_first(study, prepared.space)
    for note in notes:
        if config.worker_index is None:
            print(f"note: {note}")


def _enqueue_first(study: optuna.Study, space: SearchSpace) -> list[str]:
    """A new study's first trial, as its space names it (`first`), unless it holds trials
    already: a resumed study's, or those a warm start or fresh fits just queued. Returns
    its note."""
    if not space.first or study.trials:
        return []
    study.enqueue_trial(dict(space.first), user_attrs={keys.FIRST_OF_SPACE: space.source})
    values = ", ".join(f"{k} {v}" for k, v in space.first.items())
    return [f"first trial: {values} ({space.source}: first); the sampler draws the rest"]


def close_record(
    prepared: Prepared, study: optuna.Study, tracker: StudyTracker, status: str
) -> None:
    """The trials table and summary on the parent run, which is closed. Two terminals that
    finish together would both write the run's description tag (SQLite: UNIQUE constraint
    failed on tags): one at a time."""
    with store_lock(prepared.storage, prepared.tracking_uri):
        report.close_study_record(study, tracker, HOME / "reports" / prepared.folder_name, status)


def settle_leftovers(
    study: optuna.Study, tracker: StudyTracker, max_retries: int = 10, heartbeat: int = 30
) -> None:
    """Record what an earlier process left open: trials of a process that no longer runs
    are failed as interrupted (and re-queued), trial runs of finished trials are closed."""
    handler = stale_trial_handler(tracker.tracking_uri, max_retries)
    lost = fail_dead_trials(study, handler, grace=4 * heartbeat)
    states = {t.number: _run_state(t) for t in study.get_trials(deepcopy=False)}
    closed = tracker.close_orphan_runs(states)
    if lost or closed:
        print(
            f"note: recorded what an earlier run left open: {len(lost)} trial(s) of a process "
            f"that ended failed and re-queued, {closed} MLflow run(s) closed"
        )


def _run_state(trial: optuna.trial.FrozenTrial) -> str:
    interrupted = trial_attrs.of(trial).get(keys.FAIL_REASON) == keys.INTERRUPTED
    return "INTERRUPTED" if interrupted else report.trial_state(trial)


def _pruner(pruner: str | optuna.pruners.BasePruner, steps: int) -> optuna.pruners.BasePruner:
    return make_pruner(pruner, steps) if isinstance(pruner, str) else pruner


def _record_study_attrs(study: optuna.Study, prepared: Prepared, config: SearchConfig) -> None:
    attrs = {
        keys.TASK: prepared.task.name,
        keys.METRIC: prepared.space.metric,
        keys.DIRECTION: prepared.space.direction,
        keys.DATA: recordable(prepared.data_args),
        keys.SPACE: prepared.space.to_dict(),
        keys.SAMPLER: config.sampler,
        keys.PRUNER: _pruner_name(config.pruner),
        keys.SEED: config.seed,
        keys.MODEL_NAME: prepared.model_name,
        keys.SETUP: dict(prepared.setup),
        keys.BEST_RULE: best_rule(prepared.space),
        **prepared.lineage,
    }
    for key, value in attrs.items():
        study.set_user_attr(key, value)


def _parent_params(prepared: Prepared, config: SearchConfig) -> dict[str, Any]:
    return {
        "task": prepared.task.name,
        "metric": prepared.space.metric,
        "direction": prepared.space.direction,
        "sampler": config.sampler,
        "pruner": _pruner_name(config.pruner),
        "seed": config.seed,
        "space_file": prepared.space.source,
        **{f"data.{k}": v for k, v in recordable(prepared.data_args).items()},
        **{f"fixed.{k}": v for k, v in prepared.space.fixed.items()},
    }


def _pruner_name(pruner: str | optuna.pruners.BasePruner) -> str:
    return pruner if isinstance(pruner, str) else type(pruner).__name__
