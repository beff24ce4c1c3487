"""Run a study's trials up to its total target: the loop, what stops it (the target, a
timeout, a streak of failures, a failure of the machine) and the study's closing record."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

import optuna
from optuna.trial import TrialState

from tuner.config import keys, trial_attrs
from tuner.config.budget import capped_trials
from tuner.errors import TunerError, UsageError
from tuner.reports.progress import Pace, StudyProgress
from tuner.runtime import collection, devices, signals
from tuner.runtime.recovery import environment_failure, fail_dead_trials
from tuner.storage.locations import HOME, is_shared_tracking
from tuner.study._config import Prepared, SearchConfig, SearchResult
from tuner.study._record import close_record, open_record
from tuner.study._summary import count_finished, summarize
from tuner.study.baselines import study_baselines
from tuner.study.samplers import decides_at
from tuner.study.trial import TrialContext, run_trial
from tuner.study.workload import deployed_notes, workload_notes
from tuner.tracking import StudyTracker, writer


def execute(prepared: Prepared, config: SearchConfig) -> SearchResult:
    """Create or load the study and its MLflow record, then run trials up to the target."""
    devices.bound_kernel_cache()
    trials, capped = capped_trials(config.trials)
    config = dataclasses.replace(config, trials=trials)
    if prepared.space.multi_objective:  # Optuna cannot prune a multi-objective study
        config = dataclasses.replace(config, pruner="none")
    if config.worker_index is None:
        settings = {**prepared.task.defaults, **prepared.space.fixed}
        backtests = prepared.task.fold_models == "recent"  # backtests keep their newest
        costs = workload_notes(settings, config.pruner, trials, backtests)
        costs += deployed_notes(prepared.space.named_costs)
        for note in [*prepared.notes, *capped, *costs]:
            print(f"note: {note}")
    study, tracker = open_record(prepared, config)
    silent = config.quiet or config.worker_index is not None
    baselines = study_baselines(study, prepared, tracker, silent)
    context = _trial_context(prepared, config, tracker, baselines)
    if config.worker_index is not None:  # the launching process closes the study's record
        _record_beside(study, context, config, prepared)
        return summarize(study, prepared.tracking_uri, prepared.storage)
    status: str | None = "KILLED"  # unless the loop below ends normally or with a clear error
    try:
        _record_beside(study, context, config, prepared)
        status = "FINISHED"
    except SweepStopped:
        status = None  # the stores may be down: the next run closes the record
        raise
    except UsageError:
        status = "FAILED"
        raise
    finally:
        if status:
            close_record(prepared, study, tracker, status)
    return summarize(study, prepared.tracking_uri, prepared.storage)


def _record_beside(
    study: optuna.Study, context: TrialContext, config: SearchConfig, prepared: Prepared
) -> None:
    """The trials, their records written by a writer process beside them: the study ends
    once every record is in MLflow, or stops with the reason why one could not be."""
    folder = HOME / "journal" / prepared.folder_name
    try:
        with writer.beside(context.tracker, prepared.storage, folder):
            _optimize_or_stop(study, context, config)
    except writer.RecordsFailed as exc:
        raise SweepStopped(f"the sweep stopped: {exc}") from None


def _trial_context(
    prepared: Prepared,
    config: SearchConfig,
    tracker: StudyTracker,
    baselines: Mapping[str, float],
) -> TrialContext:
    """What every trial of this process shares: the task, data, space, record and device."""
    folder = HOME / "checkpoints" / prepared.folder_name
    return TrialContext(
        task=prepared.task,
        data=prepared.data,
        data_args=prepared.data_args,
        space=prepared.space,
        tracker=tracker,
        seed=config.seed,
        checkpoint_dir=folder,
        accelerator=devices.pick_accelerator(config.devices),
        make_model=prepared.make_model or prepared.task.build_model,
        target=config.trials,
        precision=config.precision,
        reports=decides_at(config.pruner),
        resume_dir=folder,
        publish_resume=is_shared_tracking(prepared.tracking_uri),
        max_retries=config.max_retries,
        bar=prepared.bar,
        study_baselines=baselines,
    )


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


def _optimize(study: optuna.Study, context: TrialContext, config: SearchConfig) -> None:
    done = count_finished(study)
    if done >= config.trials:
        print(
            f"study {study.study_name!r} already holds {done} finished trials "
            f"(target {config.trials}); nothing to run"
        )
        return
    if not config.worker_index:  # one header for a sweep, not one per worker
        print(f"study {study.study_name!r}: {done} finished, running until {config.trials} "
              f"(metric {context.space.metric}, {context.space.direction})")  # fmt: skip
    guard = FailureGuard(config.max_failures)
    label = "" if config.worker_index is None else f"w{config.worker_index}"
    progress = StudyProgress(context.space.metric, config.trials, done, config.quiet, label,
                             config.verbose, Pace(config.workers, config.timeout))  # fmt: skip
    context = dataclasses.replace(context, on_epoch=progress.epoch)
    with progress, signals.deferred():
        _run_until_target(study, context, config, progress, guard)
    guard.raise_if_tripped(study.study_name)


def _run_until_target(
    study: optuna.Study,
    context: TrialContext,
    config: SearchConfig,
    progress: StudyProgress,
    guard: FailureGuard,
) -> None:
    """Trials until finished ones make the target (or the timeout, or a guard, stops it);
    when the last ones run elsewhere, wait for them (their workers may have died)."""
    started = time.monotonic()
    with collection.survivors_frozen() as frozen:
        while count_finished(study) < config.trials and not guard.tripped:
            signals.raise_if_stopped()
            if config.timeout and time.monotonic() - started > config.timeout:
                break
            if count_finished(study) + count_running(study) >= config.trials:
                _wait_for_others(study, config.heartbeat)
                continue
            left = config.timeout - (time.monotonic() - started) if config.timeout else None
            callbacks = [progress, guard, frozen]  # progress stops the study at its target
            _optimize_once(study, context, left, callbacks)


def _optimize_once(
    study: optuna.Study, context: TrialContext, left: float | None, callbacks: list
) -> None:
    try:
        study.optimize(lambda trial: run_trial(context, trial), timeout=left,
                       catch=(Exception,), gc_after_trial=True, callbacks=callbacks)  # fmt: skip
    except ValueError:  # Optuna's "Cannot tell a FAIL trial": one another process took
        if not context.lost:
            raise
        print(
            f"trial {context.lost.pop()}: failed and queued again by another process "
            f"while this one could not reach the storage; its retry keeps the record"
        )


class FailureGuard:
    """Stops a study whose last K trials all failed: the setup is broken, not the params."""

    def __init__(self, limit: int) -> None:
        self.limit, self.streak, self.tripped, self.last_reason = limit, 0, False, ""
        self.fatal = ""

    def raise_if_tripped(self, study_name: str) -> None:
        """One line for why the study stopped: the machine, or a broken setup."""
        if self.fatal:
            raise SweepStopped(stopped_because(self.fatal))
        if self.tripped:
            raise UsageError(
                f"the last {self.limit} trials all failed ({self.last_reason}); the setup is "
                f"wrong, not the params: see `tuner trials --study {study_name}`"
            )

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        attrs = trial_attrs.of(trial)
        if attrs.get(keys.SKIPPED):
            return
        if attrs.get(keys.FATAL):
            self.fatal, self.tripped = str(attrs[keys.FATAL]), True
            study.stop()
            return
        if trial.state != TrialState.FAIL:
            self.streak = 0
            return
        self.streak += 1
        self.last_reason = str(attrs.get(keys.FAIL_REASON, "unknown reason"))
        if self.streak >= self.limit:
            self.tripped = True
            study.stop()


def count_running(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _wait_for_others(study: optuna.Study, heartbeat: int) -> None:
    """The last trials run in other processes: wait, and fail (then retry) those whose
    process stopped sending heartbeats."""
    signals.sleep(min(heartbeat, 5))
    optuna.storages.fail_stale_trials(study)
    on_stale = study._storage.get_heartbeat_stale_trial_callback()
    fail_dead_trials(study, on_stale, grace=4 * heartbeat)
