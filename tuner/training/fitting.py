"""How a trial trains: one fit per fold (tuner.training.loop; fresh weights, the best
epoch's weights kept), pruning across the folds, and the model a trial keeps: its one
model, or its K fold models as one (tuner.contract.members)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import lightning.pytorch as pl
import optuna
import torch

from tuner.config import keys, trial_attrs
from tuner.config.goals import SETS_CONSTRAINTS, deployed_forms
from tuner.config.space import SearchSpace
from tuner.contract.members import carry
from tuner.contract.task import Task
from tuner.errors import TrialFailed
from tuner.tracking import StudyTracker
from tuner.training.costs import exported_costs, measure_costs
from tuner.training.folds import FoldResult, fold_count, summarize_folds
from tuner.training.loop import EarlyStopping, FitLoop
from tuner.training.preemption import FoldDone, Resume, TrialCheckpoints
from tuner.training.recorder import TrialRecorder


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a study shares (built once per study)."""

    task: Task
    data: Any
    data_args: Mapping[str, Any]
    space: SearchSpace
    tracker: StudyTracker
    seed: int
    checkpoint_dir: Path
    accelerator: str
    make_model: Callable[[Mapping[str, Any], Any], pl.LightningModule]
    target: int
    precision: str = "32-true"
    reports: Callable[[int], bool] = lambda step: True  # steps the pruner decides at
    on_epoch: Callable[[int, int, int, Mapping[str, float]], None] | None = None
    resume_dir: Path | None = None  # where running trials keep resume checkpoints
    publish_resume: bool = False  # and also in their MLflow runs, for the other hosts
    max_retries: int = 10  # of a trial whose worker died or was preempted
    lost: list[int] = field(default_factory=list)  # trials another process took (TrialLost)
    bar: float | None = None  # the figure to beat for `@best` (study.Prepared.bar)
    study_baselines: Mapping[str, float] = field(default_factory=dict)  # study.baselines


@dataclass
class Fitted:
    """A trained trial: the model it keeps (with its data, for the test pass), its value
    and tie score, the step its final metrics are recorded at, and what its folds add to
    its record."""

    model: pl.LightningModule
    datamodule: Any
    value: float
    tie: float
    step: int
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def fit_trial(
    context: TrialContext,
    trial: optuna.Trial,
    settings: Mapping[str, Any],
    recorder: TrialRecorder,
    resume: Resume | None = None,
    checkpoint: Path | None = None,
) -> Fitted:
    """Train every fold. With one, its best epoch's model is kept (the plain hold-out); with
    K > 1 the value is the mean over folds and the trial keeps its fold models (all, or the
    newest half of a task's backtests: its `fold_models`) as one that combines their outputs
    (tuner.contract.members); fold 0's data serve its test pass. A retried trial
    (`resume`) takes the folds its first attempt finished and continues the one it was in;
    with a `checkpoint` path, each fold saves where it is there as it trains."""
    runs, results, baselines = [], [], []
    done = list(resume.done) if resume else []
    first_trained = len(done)
    for fold in range(fold_count(settings)):
        if fold < len(done):
            runs.append(restore_fold(context, settings, fold, done[fold]))
            results.append(FoldResult(done[fold].value, done[fold].tie, done[fold].best_epoch))
        else:
            start = resume.path if resume and resume.fold == fold else None
            check = (
                partial(check_costs, context, trial, settings) if fold == first_trained else None
            )
            runs.append(
                fit_fold(context, trial, settings, recorder, fold, done, start, checkpoint, check)
            )
            result = FoldResult(recorder.best_value, recorder.best_tie, recorder.best_epoch)
            results.append(result)
            state = runs[-1].model.state_dict()
            done.append(FoldDone(state, result.value, result.tie, result.best_epoch))
        baselines.append(context.task.baselines(runs[-1].datamodule))
    step = recorder.first_step + recorder.best_epoch
    model, datamodule = runs[0]
    if len(runs) == 1:
        details = {"best_epoch": recorder.best_epoch, "epochs": recorder.epochs_run}
        return Fitted(model, datamodule, results[0].value, results[0].tie, step, details=details)
    return _kept_folds(context, trial, runs, results, baselines, step, recorder.epochs_run)


def _kept_folds(
    context: TrialContext,
    trial: optuna.Trial,
    runs: list[FoldRun],
    results: list[FoldResult],
    baselines: list[Mapping[str, float]],
    step: int,
    epochs: int,
) -> Fitted:
    """A K-fold trial: its value the folds' mean, its model the kept fold models as one."""
    summary = summarize_folds(results)
    trial_attrs.put(trial, keys.FOLD_VALUES, [r.value for r in results])
    trial_attrs.put(trial, keys.VALUE_STD, summary["std"])
    metric = context.space.metric
    metrics = {f"{metric}_fold_{k}": r.value for k, r in enumerate(results)}
    metrics[f"{metric}_std"] = summary["std"]
    metrics.update(_mean_validation_baselines(baselines))
    kept_runs = runs[: kept_members(context.task, len(runs))]
    kept = carry(runs[0].model, [run.model for run in kept_runs[1:]], context.task.combine)
    details = {"folds": len(runs), "fold_best_epochs": [r.best_epoch for r in results],
               "epochs": epochs}  # fmt: skip
    return Fitted(kept, runs[0].datamodule, summary["value"], summary["tie"], step, metrics,
                  details)  # fmt: skip


def _mean_validation_baselines(per_fold: list[Mapping[str, float]]) -> dict[str, float]:
    """The task's validation baselines (seasonal naive...) averaged over the folds, as the
    trial's value is."""
    names = {name for baselines in per_fold for name in baselines if name.startswith("val_")}
    return {
        name: statistics.fmean(b[name] for b in per_fold if name in b) for name in sorted(names)
    }


def kept_members(task: Task, folds: int) -> int:
    """How many fold models a K-fold trial keeps (its task's `fold_models` rule)."""
    return folds if task.fold_models == "all" else -(-folds // 2)


class Infeasible(optuna.TrialPruned):
    """A trial whose model breaks a constraint on its costs: stopped before it trains."""


def check_costs(
    context: TrialContext,
    trial: optuna.Trial,
    settings: Mapping[str, Any],
    model: pl.LightningModule,
    datamodule: Any,
) -> None:
    """The model's costs (tuner.config.goals) on the trial's record, measured on its first
    fresh fold model on the trial's device; a model that breaks a constraint is not
    trained. Latency is timed only where the space asks for it."""
    space, task = context.space, context.task
    members = kept_members(task, fold_count(settings))
    timed, forms = space.measures_latency, deployed_forms(space.named_costs)
    inputs = _timing_inputs(task, model, datamodule) if timed or forms else ()
    device = "cuda" if context.accelerator == "gpu" and timed else "cpu"
    mixed = timed and context.precision.endswith("-mixed")
    dtype = torch.bfloat16 if context.precision.startswith("bf16") else torch.float16
    with torch.autocast(device, dtype=dtype, enabled=mixed):
        costs = measure_costs(model.to(device), inputs, members, timed)
    model.to("cpu")
    for form in forms:  # as `tuner export` writes it, on CPU
        costs |= exported_costs(model, inputs, members, form)
    for name, value in costs.items():
        trial_attrs.put(trial, name, value)
    if SETS_CONSTRAINTS:
        for constraint in space.constraints:
            trial.set_constraint(str(constraint), constraint.violation(costs[constraint.metric]))
    broken = [str(c) for c in space.constraints if c.violation(costs[c.metric]) > 0]
    if broken:
        measured = ", ".join(f"{name} {round(value, 3)}" for name, value in costs.items())
        reason = f"breaks {', '.join(broken)} ({measured}): not trained"
        trial_attrs.put(trial, keys.INFEASIBLE, reason)
        raise Infeasible(reason)


def _timing_inputs(task: Task, model: pl.LightningModule, datamodule: Any) -> tuple[Any, ...]:
    """What latency_ms times the forward on: the task's choice, or a validation batch."""
    if task.timing_inputs is not None:
        return task.timing_inputs(model, datamodule)
    return tuple(next(iter(datamodule.val_dataloader()))[: task.forward_inputs])


class FoldRun(NamedTuple):
    model: pl.LightningModule  # with its best epoch's weights
    datamodule: Any


def fit_fold(
    context: TrialContext,
    trial: optuna.Trial,
    settings: Mapping[str, Any],
    recorder: TrialRecorder,
    fold: int,
    done: list[FoldDone] | None = None,
    start: Path | None = None,
    checkpoint: Path | None = None,
    check: Callable[[pl.LightningModule, Any], None] | None = None,
) -> FoldRun:
    """One fold, fresh weights (seed + fold), or the state of a resume checkpoint (`start`):
    trained with pruning, early stopping, the recorder, which keeps its best epoch's
    weights, and resume checkpoints at `checkpoint` (which carry the `done` folds); the
    model comes back with its best weights. `check` sees the fresh model first."""
    max_epochs = int(settings["max_epochs"])
    datamodule, model = _fold_model(context, settings, fold)
    if check is not None:
        check(model, datamodule)
    if context.accelerator == "gpu":
        torch.cuda.reset_peak_memory_stats()
    recorder.begin_fold(fold, fold * max_epochs)
    pruned_trial = PrunerSteps(trial, fold * max_epochs, context.reports, context.space.metric)
    recorder.on_replay = pruned_trial.replay
    callbacks = _callbacks(context.space, pruned_trial, settings, recorder)
    if checkpoint is not None:
        callbacks.append(_resume_checkpoints(context, settings, recorder, fold, done, checkpoint))
    loop = FitLoop(context.accelerator, context.precision, max_epochs,
                   settings.get("grad_clip"), callbacks)  # fmt: skip
    loop.fit(model, datamodule, start)
    if recorder.best_state is None:
        raise TrialFailed(
            f"metric {context.space.metric!r} was never logged; the task logs "
            f"{', '.join(sorted(loop.metrics)) or 'nothing'}"
        )
    model.load_state_dict(recorder.best_state)
    return FoldRun(model, datamodule)


def _resume_checkpoints(
    context: TrialContext,
    settings: Mapping[str, Any],
    recorder: TrialRecorder,
    fold: int,
    done: list[FoldDone] | None,
    checkpoint: Path,
) -> TrialCheckpoints:
    """Resume checkpoints of the fold at `checkpoint`, published in the trial's run where
    other hosts must find them."""
    every = int(settings.get("checkpoint_every") or 0)
    publish = None
    if context.publish_resume:
        publish = partial(context.tracker.publish_resume, recorder.run_id)
    return TrialCheckpoints(checkpoint, every, fold, done or [], publish)


def _fold_model(
    context: TrialContext, settings: Mapping[str, Any], fold: int
) -> tuple[Any, pl.LightningModule]:
    weights_seed = settings.get("train_seed")  # a fresh fit's; the splits keep the study's
    if weights_seed is None:
        weights_seed = context.seed
    pl.seed_everything(weights_seed + fold, verbose=False)
    fold_settings = {**settings, "seed": context.seed, "fold": fold}
    datamodule = context.task.build_datamodule(context.data, fold_settings)
    model = context.make_model(settings, datamodule)
    if context.task.adopt is not None:
        context.task.adopt(model, datamodule)
    return datamodule, model


def restore_fold(
    context: TrialContext, settings: Mapping[str, Any], fold: int, done: FoldDone
) -> FoldRun:
    """A fold the trial's earlier attempt finished: its best weights, no training."""
    datamodule, model = _fold_model(context, settings, fold)
    model.load_state_dict(done.state)
    return FoldRun(model, datamodule)


class PrunerSteps:
    """The trial as the pruner sees it during fold k (a callback of tuner.training.loop).
    Its epochs are
    reported after the earlier folds' (step = k * max_epochs + epoch), so the pruner
    compares every trial at the same fold and epoch and its budget spans all the folds; and
    only at the steps where the pruner can decide (`reports`): each report and check is a
    round trip to the storage, as long as a whole epoch of a small LSTM."""

    def __init__(
        self,
        trial: optuna.Trial,
        first_step: int,
        reports: Callable[[int], bool],
        metric: str,
    ) -> None:
        self.trial, self.first_step, self.reports = trial, first_step, reports
        self.metric = metric

    def replay(self, history: list[tuple[dict[str, float], int]]) -> None:
        """A resumed trial's saved curve, reported at the steps the pruner decides at: the
        pruner judges it as it would have judged the first attempt."""
        for metrics, step in history:
            if self.metric in metrics and self.reports(step):
                self.trial.report(metrics[self.metric], step)

    def on_epoch_end(self, loop: FitLoop, model: Any, metrics: Mapping[str, float]) -> None:
        """Report the epoch's value where the pruner decides; end the fit as it decides."""
        step = self.first_step + loop.epoch
        if self.metric not in metrics or not self.reports(step):
            return
        self.trial.report(metrics[self.metric], step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"Trial was pruned at epoch {loop.epoch}.")


def _callbacks(
    space: SearchSpace, trial: PrunerSteps, settings: Mapping[str, Any], recorder: TrialRecorder
) -> list[Any]:
    """The recorder, the pruner's reports and, with a patience, early stopping."""
    callbacks: list[Any] = [recorder, trial]
    if int(settings.get("patience") or 0) > 0:
        callbacks.append(EarlyStopping(space.metric, int(settings["patience"]), space.direction))
    return callbacks
