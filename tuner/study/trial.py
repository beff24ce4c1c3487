"""One trial: params -> settings -> trained folds (tuner.training.fitting) -> test -> the
model kept if it is the study's best (_keep.py) -> metric value.

The objective knows no task: everything task-specific comes through the Task contract.
"""

from __future__ import annotations

import math
import os
import socket
import traceback
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import optuna
import torch
from optuna.trial import TrialState

from tuner.config import keys, trial_attrs
from tuner.errors import TrialFailed, mask_secrets
from tuner.runtime import signals
from tuner.runtime.devices import describe
from tuner.runtime.recovery import environment_failure
from tuner.study._keep import keep_if_best, objective_values, recorded_costs
from tuner.tracking.writer import check_writer
from tuner.training.fitting import Fitted, Infeasible, TrialContext, fit_trial
from tuner.training.folds import fold_count
from tuner.training.loop import evaluate
from tuner.training.preemption import Chain, Resume, requeue
from tuner.training.recorder import TrialRecorder

__all__ = ["TargetReached", "TrialContext", "run_trial"]


class TargetReached(Exception):
    """Another process finished the study's last trials while this one was asking."""


class TrialLost(Exception):
    """This process's trial is no longer RUNNING in the storage: its host could not reach
    the storage for longer than the heartbeat grace, so another process failed it and
    queued it again. The record belongs to that retry now: nothing more is written for
    this attempt (no metric, model or state), and the process goes on with the study."""


def ensure_ours(trial: optuna.Trial) -> None:
    """Raise TrialLost unless the trial is still RUNNING in the storage (one read)."""
    if trial.study._storage.get_trial(trial._trial_id).state != TrialState.RUNNING:
        raise TrialLost(f"trial {trial.number} was failed and re-queued by another process")


def run_trial(context: TrialContext, trial: optuna.Trial) -> float | list[float]:
    """Optuna objective: the best epoch's metric (its weights are what gets checkpointed),
    and in a multi-objective study the model's costs the space names after it.
    A failure of the machine rather than the params (full disk, a store that stopped
    answering) marks the trial FATAL: the study stops instead of failing trial after trial."""
    trial_attrs.put(trial, keys.WORKER, f"{socket.gethostname()}:{os.getpid()}")
    try:
        return _run_trial(context, trial)
    except signals.PreemptionStop:
        raise
    except TrialLost:
        trial_attrs.drop(trial)  # the retry's record now: nothing more is written for this one
        raise
    except KeyboardInterrupt:  # also when the stop came before training started
        trial_attrs.put(trial, keys.FAIL_REASON, keys.INTERRUPTED)
        raise
    except Exception as exc:
        reason = environment_failure(exc)
        if reason:
            trial_attrs.put(trial, keys.FAIL_REASON, reason)
            trial_attrs.put(trial, keys.FATAL, reason)
        elif keys.FAIL_REASON not in trial_attrs.of(trial):  # failed before training started
            trial_attrs.put(trial, keys.FAIL_REASON, failure_reason(exc))
        raise
    finally:
        trial_attrs.write(trial)  # what it recorded, in one call, before Optuna hears its end


def _run_trial(context: TrialContext, trial: optuna.Trial) -> float | list[float]:
    signals.raise_if_stopped()
    check_writer(context.tracker)  # records it could not write stop the sweep
    _skip_if_target_reached(trial, context.target)
    settings, recorder = _start(context, trial)
    chain = Chain.of(trial, context.resume_dir)
    resume = _resume_point(context, trial, recorder.run_id, chain)
    try:
        value = _train_and_record(context, trial, settings, recorder, resume, chain.checkpoint)
    except signals.Preempted as exc:
        trial_attrs.write(trial)  # its retry takes some of them
        frozen = trial.study._storage.get_trial(trial._trial_id)
        requeued = requeue(trial.study, frozen, context.max_retries)
        then = "queued again to resume from there" if requeued else "retries used up"
        trial_attrs.put(trial, keys.FAIL_REASON, f"{exc}; {then}")
        trial_attrs.put(trial, keys.INTERRUPTED_BY, "a preemption notice (SIGTERM)")
        context.tracker.end_trial(
            recorder.run_id, trial.number, "PREEMPTED", recorder.details(fail_reason=then)
        )
        raise signals.PreemptionStop(str(exc)) from None
    except TrialLost:
        chain.discard()  # this host's copy only: the retry holds the chain now
        context.lost.append(trial.number)
        raise
    except BaseException:
        _discard(context, trial, chain, recorder.run_id)
        raise
    _discard(context, trial, chain, recorder.run_id)
    return objective_values(context, trial, value) if context.space.multi_objective else value


def _discard(context: TrialContext, trial: optuna.Trial, chain: Chain, run_id: str) -> None:
    """The trial ended for good: its chain's checkpoints go, here and in the runs of its
    attempts where they were published for other hosts."""
    if chain.discard() and context.publish_resume:
        runs = [trial_attrs.of(t).get(keys.RUN_ID) for t in chain.attempts(trial)]
        context.tracker.drop_resume([*filter(None, runs), run_id])


def _resume_point(
    context: TrialContext, trial: optuna.Trial, run_id: str, chain: Chain
) -> Resume | None:
    """The checkpoint of this trial's retry chain, when an earlier attempt left one."""
    path = chain.checkpoint
    if path is None or not chain.earlier:
        return None
    if not path.is_file() and context.publish_resume:
        before = chain.last_attempt(trial)
        run_id = trial_attrs.of(before).get(keys.RUN_ID) if before is not None else None
        if run_id:  # its run has it
            context.tracker.fetch_resume(run_id, path)
    resume = Resume.load(path)
    if resume is not None:
        where = {"trial": chain.earlier[0], "fold": resume.fold, "epoch": resume.epoch}
        trial_attrs.put(trial, keys.RESUMED_FROM, where)
        context.tracker.tag_run(run_id, {f"{keys.TAG}{keys.RESUMED_FROM}": str(where)})
    return resume


def _train_and_record(
    context: TrialContext,
    trial: optuna.Trial,
    settings: dict[str, Any],
    recorder: TrialRecorder,
    resume: Resume | None,
    checkpoint: Path | None,
) -> float:
    run_id, number = recorder.run_id, trial.number
    try:
        try:
            value, details = _fit_and_test(context, trial, settings, recorder, resume, checkpoint)
        finally:
            free_memory()
            ensure_ours(trial)  # else its run is the retry's business (closed as LOST)
            recorder.flush()  # however the trial ends, its curves are complete in MLflow
    except (TrialLost, optuna.exceptions.UpdateFinishedTrialError) as exc:
        raise TrialLost(str(exc)) from None
    except signals.Preempted:
        raise
    except KeyboardInterrupt:
        context.tracker.end_trial(run_id, number, "INTERRUPTED", recorder.details())
        raise
    except Infeasible as exc:
        recorder.record(recorded_costs(trial), 0)
        recorder.flush()
        context.tracker.end_trial(run_id, number, "PRUNED", recorder.details(infeasible=str(exc)))
        raise
    except optuna.TrialPruned:
        _record_pruned(context, trial, settings, recorder)
        raise
    except Exception as exc:
        _record_failure(context, trial, exc, recorder)
        raise
    trial_attrs.put(trial, keys.EPOCHS, recorder.epochs_run)
    context.tracker.end_trial(run_id, number, "COMPLETE", recorder.details(**details))
    return value


def _record_pruned(
    context: TrialContext, trial: optuna.Trial, settings: dict[str, Any], recorder: TrialRecorder
) -> None:
    """Where the pruner stopped the trial: its epoch (and fold, with K > 1)."""
    where = {keys.PRUNED_AT: recorder.fold_epochs - 1}
    if fold_count(settings) > 1:
        where[keys.PRUNED_FOLD] = recorder.fold
    for key, at in {**where, keys.EPOCHS: recorder.epochs_run}.items():
        trial_attrs.put(trial, key, at)
    context.tracker.end_trial(recorder.run_id, trial.number, "PRUNED", recorder.details(**where))


def _skip_if_target_reached(trial: optuna.Trial, target: int) -> None:
    if _target_reached(trial, target):
        trial_attrs.put(trial, keys.SKIPPED, True)
        trial_attrs.put(trial, keys.FAIL_REASON, "not run: the study reached its target meanwhile")
        trial.study.stop()
        raise TargetReached("the study reached its target in another process")


def _start(context: TrialContext, trial: optuna.Trial) -> tuple[dict[str, Any], TrialRecorder]:
    """The trial's params and settings, its MLflow run, and the recorder that follows it."""
    params = context.space.suggest(trial)
    settings = {**context.task.defaults, **context.space.fixed, **params}  # the model's
    trial_attrs.put(trial, keys.SETTINGS, settings)
    device = describe(context.accelerator)
    trial_attrs.put(trial, keys.DEVICE, device)
    run_id = context.tracker.start_trial(trial.number, settings, device)
    trial_attrs.put(trial, keys.RUN_ID, run_id)
    trial_attrs.write(trial)  # its worker and run, for other processes while it runs
    attrs = trial_attrs.of(trial)
    if keys.WARM_START in attrs:
        context.tracker.tag_run(run_id, {f"{keys.TAG}{keys.WARM_START}": attrs[keys.WARM_START]})
    if keys.FIT_OF in attrs:  # `tuner lineage` leads back to the trial it re-trains
        context.tracker.tag_run(run_id, {keys.SOURCE_RUN_TAG: attrs[keys.FIT_OF]})
    space = context.space
    recorder = TrialRecorder(
        context.tracker,
        run_id,
        space.metric,
        space.direction,
        space.tie_breaker(context.task.spec),
    )
    if context.on_epoch:
        on_epoch, total = context.on_epoch, int(settings["max_epochs"]) * fold_count(settings)
        recorder.on_epoch = lambda epoch, metrics: on_epoch(trial.number, epoch, total, metrics)
    return settings, recorder


def _target_reached(trial: optuna.Trial, target: int) -> bool:
    """Finished trials plus those running elsewhere already make the target: running this
    one too would overshoot it (two terminals, several workers)."""
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    others = [
        t
        for t in trial.study.get_trials(deepcopy=False, states=states)
        if t.number != trial.number
    ]
    return len(others) >= target


def _fit_and_test(
    context: TrialContext,
    trial: optuna.Trial,
    settings: dict[str, Any],
    recorder: TrialRecorder,
    resume: Resume | None = None,
    checkpoint: Path | None = None,
) -> tuple[float, dict[str, Any]]:
    fitted = fit_trial(context, trial, settings, recorder, resume, checkpoint)
    ensure_ours(trial)  # before its test metrics and model reach the record
    if math.isfinite(fitted.tie):
        trial_attrs.put(trial, keys.TIE_SCORE, fitted.tie)
    _test(context, trial, fitted, recorder)
    keep_if_best(context, trial, fitted, settings, recorder)
    return fitted.value, fitted.details


def _test(
    context: TrialContext, trial: optuna.Trial, fitted: Fitted, recorder: TrialRecorder
) -> None:
    """The kept model on the test split, beside the task's baselines."""
    datamodule = fitted.datamodule
    baselines = {**context.task.baselines(datamodule), **context.study_baselines}
    trial_attrs.put(trial, keys.BASELINE_KEYS, sorted(baselines))
    final = {**baselines, **fitted.metrics}
    has_test = type(datamodule).test_dataloader is not pl.LightningDataModule.test_dataloader
    test_batches = datamodule.test_dataloader() if has_test else []
    if len(test_batches):
        final.update(evaluate(fitted.model, test_batches, "test", context.accelerator,
                              context.precision))  # fmt: skip
    final[f"best_{context.space.metric}"] = fitted.value
    final.update(recorded_costs(trial))
    if context.accelerator == "gpu":
        final[keys.GPU_PEAK] = torch.cuda.max_memory_allocated() / 2**20
        trial_attrs.put(trial, keys.GPU_PEAK, round(final[keys.GPU_PEAK], 1))
    recorder.record(final, fitted.step)
    for key, value in final.items():
        if key.startswith("test_") or key in baselines:  # val_ ones: on the trial's rows
            trial_attrs.put(trial, key, value)


def _record_failure(
    context: TrialContext, trial: optuna.Trial, exc: Exception, recorder: TrialRecorder
) -> None:
    if environment_failure(exc):
        return  # the stores may be what failed: run_trial records it, the next run closes the run
    reason = failure_reason(exc)
    trial_attrs.put(trial, keys.FAIL_REASON, reason)
    context.tracker.log_text(recorder.run_id, traceback.format_exc(), "traceback.txt")
    context.tracker.end_trial(
        recorder.run_id, trial.number, "FAIL", recorder.details(fail_reason=reason)
    )


def failure_reason(exc: Exception) -> str:
    """One line a person can act on: the exception's type and first line."""
    reason = str(exc) if isinstance(exc, TrialFailed) else f"{type(exc).__name__}: {exc}"
    reason = mask_secrets((reason.splitlines() or [""])[0])[:500]
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        reason = f"out of memory: {reason}"
    return reason


def free_memory() -> None:
    """Give the GPU memory a trial cached back to the other trials sharing the GPU (the
    study's optimize(gc_after_trial=True) already collects the trial's Python objects)."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
