"""Create / resume / run a study: storage, sampler, pruner, `--trials` as a total target."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from tuner import devices, keys, options, report, signals
from tuner.errors import TunerError, UsageError
from tuner.names import check_name, clean_name, path_part
from tuner.objective import TrialContext, run_trial
from tuner.progress import StudyProgress
from tuner.recovery import environment_failure, fail_dead_local_trials
from tuner.registry import get_task
from tuner.resume import check_unchanged, study_setup
from tuner.samplers import (
    check_sampler,
    make_pruner,
    make_sampler,
    sampler_seed,
    this_process,
)
from tuner.settings import check_values
from tuner.space import SearchSpace, check_overrides, load_space
from tuner.stores import (
    HOME,
    check_tracking,
    load_study,
    open_storage,
    prepare_local_folders,
    read_studies,
    resolve_storage,
    resolve_tracking,
    stale_trial_handler,
    store_lock,
)
from tuner.task import Task
from tuner.tracking import StudyTracker

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class SearchConfig:
    """Everything `tuner search` takes; the CLI and the Python API both build one."""

    task: str
    data: Mapping[str, Any] = field(default_factory=dict)
    space: str | None = None
    trials: int = 20
    timeout: float | None = None
    study: str | None = None
    storage: str | None = None
    tracking_uri: str | None = None
    sampler: str = "tpe"
    pruner: str | optuna.pruners.BasePruner = "hyperband"
    seed: int = 0
    overrides: Mapping[str, Any] = field(default_factory=dict)
    devices: str = "auto"
    quiet: bool = False
    verbose: bool = False
    max_failures: int = 5
    precision: str = "32-true"  # or 16-mixed / bf16-mixed (GPU), bf16-mixed (CPU)
    workers: int = 1
    trials_per_device: int = 1
    heartbeat: int = 30  # seconds; a trial silent for 4x this is failed and retried
    worker_index: int | None = None  # set inside a worker process of `--workers N`
    allow_changes: bool = False  # resume a study with other settings or data than before


@dataclass(frozen=True)
class SearchResult:
    study: str
    metric: str
    direction: str
    best_value: float | None
    best_trial: int | None
    best_params: dict[str, Any]
    best_run_id: str | None
    checkpoint_uri: str | None
    parent_run_id: str | None
    model_name: str
    model_version: str | None
    counts: dict[str, int]
    test_metrics: dict[str, float]
    baseline_keys: list[str]
    tracking_uri: str
    storage: str


# ------------------------------------------------------------ locations


def default_data_path(task: Task) -> str | None:
    """The task's shipped demo data (a path the task gives), used when --data is not."""
    return str(task.default_data) if task.default_data else None


def default_space_path(task: Task) -> str:
    return str(resources.files("search_spaces") / f"{task.name}.yaml")


GENERIC_STEMS = ("manifest", "data", "train", "metadata")


def study_name_for(task: Task, data: Mapping[str, Any], existing: Mapping[str, Any]) -> str:
    """Derived from task + data file, so rerunning the same command finds the same study;
    cleaned into the name rule (a study stored under the raw form before is kept)."""
    raw = f"{task.name}-{data_stem(data)}"
    return raw if raw in existing else clean_name(raw)


def data_stem(data: Mapping[str, Any]) -> str:
    """The data file's stem; a file named like every other (manifest.csv, data.csv) is
    named by its folder."""
    path = Path(str(data.get("data") or "data"))
    return path.parent.name if path.stem in GENERIC_STEMS and path.parent.name else path.stem


# ------------------------------------------------------------ the study


@dataclass(frozen=True)
class Prepared:
    """A checked search: nothing has been created yet when this exists."""

    task: Task
    data_args: dict[str, Any]
    data: Any
    space: SearchSpace
    name: str
    storage: str
    tracking_uri: str
    artifact_root: str | None
    notes: list[str]
    model_name: str = ""
    lineage: Mapping[str, str] = field(default_factory=dict)
    make_model: Callable[[Mapping[str, Any], Any], Any] | None = None
    setup: Mapping[str, Any] = field(default_factory=dict)

    @property
    def folder_name(self) -> str:
        """The study's folder under mlruns/ (checkpoints, reports)."""
        return path_part(self.name)


def prepare(config: SearchConfig) -> Prepared:
    """Check every input before anything is created (study, experiment, run, file)."""
    check_config(config)
    task = get_task(config.task)
    data_args = {**config.data, "data": config.data.get("data") or default_data_path(task)}
    space_path = config.space or default_space_path(task)
    if not config.space and not Path(space_path).is_file():
        raise UsageError(
            f"--task {task.name!r} has no default search space "
            f"(search_spaces/{task.name}.yaml); pass --space FILE"
        )
    space = load_space(space_path, task.spec)
    space = space.with_fixed(check_overrides(config.overrides, task.spec))
    data = task.load_data(data_args)
    space, notes = task.fit_space(space, data)
    storage = resolve_storage(config.storage)
    tracking_uri, artifact_root = resolve_tracking(config.tracking_uri)
    existing = read_studies(storage)
    name = config.study or study_name_for(task, data_args, existing)
    setup = study_setup(space.to_dict(), data_args, config.precision)
    check_existing_study(existing.get(name), name, task, space, setup, config.allow_changes)
    check_tracking(tracking_uri)
    return Prepared(
        task,
        data_args,
        data,
        space,
        name,
        storage,
        tracking_uri,
        artifact_root,
        notes,
        model_name=name,
        setup=setup,
    )


def check_config(config: SearchConfig) -> None:
    """The search's own options: declared once in tuner.options, checked for the CLI and
    the Python API alike."""
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    if not isinstance(config.pruner, str):
        values.pop("pruner")  # an Optuna pruner object, from the Python API
    check_values(values, options.SEARCH)
    check_sampler(config.sampler)
    if config.study is not None:
        check_name(config.study)
    if config.precision == "16-mixed" and devices.pick_accelerator(config.devices) == "cpu":
        raise UsageError(
            "--precision 16-mixed needs a GPU (none is used here); on CPU use "
            "bf16-mixed or 32-true"
        )
    devices.plan_workers(config.workers, config.devices, config.trials_per_device)


def check_existing_study(
    summary: optuna.study.StudySummary | None,
    name: str,
    task: Task,
    space: SearchSpace,
    setup: Mapping[str, Any],
    allow_changes: bool = False,
) -> None:
    """A study name reused for another task, metric or direction would mix results, and
    one resumed with other settings or data would rank two setups as one search."""
    if summary is None:
        return
    attrs = summary.user_attrs
    wanted = {"task": task.name, "metric": space.metric, "direction": space.direction}
    for key, value in wanted.items():
        if key in attrs and attrs[key] != value:
            raise UsageError(
                f"--study {name!r}: this study was made with {key} {attrs[key]!r}, "
                f"not {value!r}; choose another --study name"
            )
    if not allow_changes:
        check_unchanged(name, attrs.get(keys.SETUP), setup)


def run_search(config: SearchConfig) -> SearchResult:
    """Run (or resume) a study until it holds `config.trials` finished trials."""
    quiet_libraries()
    prepared = prepare(config)
    if config.workers > 1 or "," in config.devices or config.devices.isdigit():
        return _run_with_workers(prepared, config)
    return execute(prepared, config)


def _run_with_workers(prepared: Prepared, config: SearchConfig) -> SearchResult:
    from tuner.workers import run_workers

    def close(study: optuna.Study, tracker: StudyTracker, status: str) -> None:
        report.close_study_record(study, tracker, HOME / "reports" / prepared.folder_name, status)

    failed = run_workers(config, prepared, lambda: open_record(prepared, config), close)
    study = load_study(prepared.name, prepared.storage)
    if failed and count_finished(study) < config.trials:
        raise UsageError(
            f"{failed} of {config.workers} workers failed (see their messages "
            f"above); rerun the same command to resume"
        )
    if failed:
        print(f"note: {failed} worker(s) stopped early; the others finished the study")
    return summarize(study, prepared.tracking_uri, prepared.storage)


def execute(prepared: Prepared, config: SearchConfig) -> SearchResult:
    """Create or load the study and its MLflow record, then run trials up to the target."""
    if config.worker_index is None:
        for note in prepared.notes:
            print(f"note: {note}")
    study, tracker = open_record(prepared, config)
    context = TrialContext(
        task=prepared.task,
        data=prepared.data,
        data_args=prepared.data_args,
        space=prepared.space,
        tracker=tracker,
        seed=config.seed,
        checkpoint_dir=HOME / "checkpoints" / prepared.folder_name,
        accelerator=devices.pick_accelerator(config.devices),
        make_model=prepared.make_model or prepared.task.build_model,
        target=config.trials,
        precision=config.precision,
    )
    if config.worker_index is not None:  # the launching process closes the study's record
        _optimize_or_stop(study, context, config)
        return summarize(study, prepared.tracking_uri, prepared.storage)
    status: str | None = "KILLED"  # unless the loop below ends normally or with a clear error
    try:
        _optimize_or_stop(study, context, config)
        status = "FINISHED"
    except SweepStopped:
        status = None  # the stores may be down: the next run closes the record
        raise
    except UsageError:
        status = "FAILED"
        raise
    finally:
        if status:
            report.close_study_record(
                study, tracker, HOME / "reports" / prepared.folder_name, status
            )
    return summarize(study, prepared.tracking_uri, prepared.storage)


class SweepStopped(TunerError):
    """The machine, not the params, stopped the sweep (a full disk, a lost store)."""


def _optimize_or_stop(study: optuna.Study, context: TrialContext, config: SearchConfig) -> None:
    try:
        _optimize(study, context, config)
    except (TunerError, KeyboardInterrupt):
        raise
    except Exception as exc:
        reason = environment_failure(exc)
        if reason is None:
            raise
        raise SweepStopped(stopped_because(reason)) from None


def stopped_because(reason: str) -> str:
    return (
        f"the sweep stopped: {reason}; finished trials are kept, the running one is "
        f"recorded as failed; rerun the same command once this is fixed"
    )


def open_record(prepared: Prepared, config: SearchConfig) -> tuple[optuna.Study, StudyTracker]:
    """Create or load the study and find or create its one parent run: the first thing
    a search creates, once every input has been checked."""
    space = prepared.space
    max_epochs = int({**prepared.task.defaults, **space.fixed}["max_epochs"])
    prepare_local_folders(prepared.storage, prepared.tracking_uri, prepared.artifact_root)
    with store_lock(prepared.storage, prepared.tracking_uri):
        tracker = StudyTracker(  # its client makes a local MLflow database on first use
            prepared.tracking_uri,
            prepared.name,
            prepared.artifact_root,
            model_name=prepared.model_name,
            tags=prepared.lineage,
        )
        existed = prepared.name in read_studies(prepared.storage)
        study = optuna.create_study(
            study_name=prepared.name,
            storage=open_storage(prepared.storage, config.heartbeat, prepared.tracking_uri),
            direction=space.direction,
            load_if_exists=True,
            pruner=_pruner(config.pruner, max_epochs),
        )
        if not existed:
            study.set_user_attr(keys.CREATED_BY, this_process())
        seed = sampler_seed(study, config.seed, config.worker_index)
        study.sampler = make_sampler(config.sampler, seed, config.trials)
        _record_study_attrs(study, prepared, config)
        parent_run_id = tracker.open_study(
            _parent_params(prepared, config),
            {keys.TASK_TAG: prepared.task.name, keys.METRIC_TAG: space.metric},
        )
        study.set_user_attr(keys.PARENT_RUN_ID, parent_run_id)
        tracker.set_runs_view(space.metric, [spec.name for spec in space.params])
    settle_leftovers(study, tracker)
    return study, tracker


def settle_leftovers(study: optuna.Study, tracker: StudyTracker) -> None:
    """Record what an earlier process left open: trials of a process of this host that no
    longer runs are failed (and re-queued), trial runs of finished trials are closed."""
    lost = fail_dead_local_trials(study, stale_trial_handler(tracker.tracking_uri))
    states = {t.number: _run_state(t) for t in study.get_trials(deepcopy=False)}
    closed = tracker.close_orphan_runs(states)
    if lost or closed:
        print(
            f"note: recorded what an earlier run left open: {len(lost)} trial(s) of a process "
            f"that ended failed and re-queued, {closed} MLflow run(s) closed"
        )


def _run_state(trial: optuna.trial.FrozenTrial) -> str:
    interrupted = trial.user_attrs.get(keys.FAIL_REASON) == keys.INTERRUPTED
    return "INTERRUPTED" if interrupted else report.trial_state(trial)


def _pruner(pruner: str | optuna.pruners.BasePruner, max_epochs: int) -> optuna.pruners.BasePruner:
    return make_pruner(pruner, max_epochs) if isinstance(pruner, str) else pruner


def _optimize(study: optuna.Study, context: TrialContext, config: SearchConfig) -> None:
    done = count_finished(study)
    if done >= config.trials:
        print(
            f"study {study.study_name!r} already holds {done} finished trials "
            f"(target {config.trials}); nothing to run"
        )
        return
    print(
        f"study {study.study_name!r}: {done} finished, running until {config.trials} "
        f"(metric {context.space.metric}, {context.space.direction})"
    )
    guard = FailureGuard(config.max_failures)
    started = time.monotonic()
    label = "" if config.worker_index is None else f"w{config.worker_index}"
    progress = StudyProgress(
        context.space.metric, config.trials, done, config.quiet, label, config.verbose
    )
    context = dataclasses.replace(context, on_epoch=progress.epoch)
    with progress:
        while count_finished(study) < config.trials and not guard.tripped:
            signals.raise_if_stopped()
            if config.timeout and time.monotonic() - started > config.timeout:
                break
            if count_finished(study) + count_running(study) >= config.trials:
                _wait_for_others(study, config.heartbeat)  # they may finish, or have died
                continue
            left = config.timeout - (time.monotonic() - started) if config.timeout else None
            study.optimize(
                lambda trial: run_trial(context, trial),
                timeout=left,
                catch=(Exception,),
                gc_after_trial=True,
                callbacks=[MaxTrialsCallback(config.trials, states=FINISHED), progress, guard],
            )
    if guard.fatal:
        raise SweepStopped(stopped_because(guard.fatal))
    if guard.tripped:
        raise UsageError(
            f"the last {config.max_failures} trials all failed ("
            f"{guard.last_reason}); the setup is wrong, not the params: see "
            f"`tuner trials --study {study.study_name}`"
        )


class FailureGuard:
    """Stops a study whose last K trials all failed: the setup is broken, not the params."""

    def __init__(self, limit: int) -> None:
        self.limit, self.streak, self.tripped, self.last_reason = limit, 0, False, ""
        self.fatal = ""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.user_attrs.get(keys.SKIPPED):
            return
        if trial.user_attrs.get(keys.FATAL):
            self.fatal, self.tripped = str(trial.user_attrs[keys.FATAL]), True
            study.stop()
            return
        if trial.state != TrialState.FAIL:
            self.streak = 0
            return
        self.streak += 1
        self.last_reason = str(trial.user_attrs.get(keys.FAIL_REASON, "unknown reason"))
        if self.streak >= self.limit:
            self.tripped = True
            study.stop()


def count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def count_running(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _wait_for_others(study: optuna.Study, heartbeat: int) -> None:
    """The last trials run in other processes: wait, and fail (then retry) those whose
    process stopped sending heartbeats."""
    time.sleep(min(heartbeat, 5))
    optuna.storages.fail_stale_trials(study)


def count_finished_by_name(name: str, storage: str) -> int:
    """Finished trials of a study, 0 when it does not exist yet."""
    if name not in read_studies(storage):
        return 0
    return count_finished(load_study(name, storage))


def _record_study_attrs(study: optuna.Study, prepared: Prepared, config: SearchConfig) -> None:
    attrs = {
        "task": prepared.task.name,
        "metric": prepared.space.metric,
        "direction": prepared.space.direction,
        "data": prepared.data_args,
        "space": prepared.space.to_dict(),
        "sampler": config.sampler,
        "pruner": _pruner_name(config.pruner),
        "seed": config.seed,
        keys.MODEL_NAME: prepared.model_name,
        keys.SETUP: dict(prepared.setup),
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
        **{f"data.{k}": v for k, v in prepared.data_args.items() if v is not None},
        **{f"fixed.{k}": v for k, v in prepared.space.fixed.items()},
    }


def _pruner_name(pruner: str | optuna.pruners.BasePruner) -> str:
    return pruner if isinstance(pruner, str) else type(pruner).__name__


def quiet_libraries() -> None:
    """Keep Lightning's banners and Optuna's per-trial logs out of the user's way."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no usage reports from sweeps
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for name in (
        "lightning.pytorch",
        "lightning.fabric",
        "lightning",
        "pytorch_lightning",
        "alembic",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)
    # MLflow logs a store's failure with a traceback before raising it; tuner reports it
    # on one line (and records it), so its log would only repeat it at length
    logging.getLogger("mlflow").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


# ------------------------------------------------------------ reading a study back


def summarize(study: optuna.Study, tracking_uri: str, storage: str) -> SearchResult:
    counts = report.state_counts(study)
    best = None
    try:
        best = study.best_trial
    except ValueError:
        pass
    attrs = best.user_attrs if best else {}
    return SearchResult(
        study=study.study_name,
        metric=study.user_attrs.get("metric", "value"),
        direction=study.direction.name.lower(),
        best_value=best.value if best else None,
        best_trial=best.number if best else None,
        best_params=dict(best.params) if best else {},
        best_run_id=attrs.get(keys.RUN_ID),
        checkpoint_uri=attrs.get(keys.CHECKPOINT_URI),
        parent_run_id=study.user_attrs.get(keys.PARENT_RUN_ID),
        model_name=study.user_attrs.get(keys.MODEL_NAME, study.study_name),
        model_version=attrs.get(keys.MODEL_VERSION),
        counts=counts,
        test_metrics={k: v for k, v in attrs.items() if k.startswith("test_")},
        baseline_keys=list(attrs.get(keys.BASELINE_KEYS, [])),
        tracking_uri=tracking_uri,
        storage=storage,
    )
