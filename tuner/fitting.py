"""How a trial trains: one Lightning Trainer per fold (fresh weights; the best epoch's weights
kept), pruning across the folds, and the model a trial keeps: its one model, or its K fold
models as one (tuner.ensemble)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import lightning.pytorch as pl
import optuna
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from optuna_integration import PyTorchLightningPruningCallback

from tuner import keys, signals
from tuner.ensemble import carry
from tuner.errors import TrialFailed
from tuner.folds import FoldResult, fold_count, summarize_folds
from tuner.recorder import TrialRecorder, make_trainer
from tuner.space import SearchSpace
from tuner.task import Task
from tuner.tracking import StudyTracker


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
    # held while the `best` alias moves: hosts finishing together must not point it at a
    # model that is no longer the best
    store_lock: Callable[[], AbstractContextManager[None]] = nullcontext


@dataclass
class Fitted:
    """A trained trial: the model it keeps (with its data and Trainer, for the test pass),
    its value and tie score, the step its final metrics are recorded at, and what its folds
    add to its record."""

    model: pl.LightningModule
    datamodule: Any
    trainer: pl.Trainer
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
) -> Fitted:
    """Train every fold. With one, its best epoch's model is kept (the plain hold-out); with
    K > 1 the value is the mean over folds and the trial keeps its fold models (all, or the
    newest half of a task's backtests: its `fold_models`) as one that combines their outputs
    (tuner.ensemble); fold 0's data and Trainer serve its test pass."""
    runs, results, baselines = [], [], []
    for fold in range(fold_count(settings)):
        runs.append(fit_fold(context, trial, settings, recorder, fold))
        results.append(FoldResult(recorder.best_value, recorder.best_tie, recorder.best_epoch))
        baselines.append(context.task.baselines(runs[-1].datamodule))
    step = recorder.first_step + recorder.best_epoch
    model, datamodule, trainer = runs[0]
    if len(runs) == 1:
        details = {"best_epoch": recorder.best_epoch, "epochs": recorder.epochs_run}
        return Fitted(model, datamodule, trainer, results[0].value, results[0].tie, step,
                      details=details)  # fmt: skip
    summary = summarize_folds(results)
    trial.set_user_attr(keys.FOLD_VALUES, [r.value for r in results])
    trial.set_user_attr(keys.VALUE_STD, summary["std"])
    metric = context.space.metric
    metrics = {f"{metric}_fold_{k}": r.value for k, r in enumerate(results)}
    metrics[f"{metric}_std"] = summary["std"]
    metrics.update(_mean_validation_baselines(baselines))
    kept_runs = runs if context.task.fold_models == "all" else runs[: -(-len(runs) // 2)]
    kept = carry(model, [run.model for run in kept_runs[1:]], context.task.combine)
    details = {"folds": len(runs), "fold_best_epochs": [r.best_epoch for r in results],
               "epochs": recorder.epochs_run}  # fmt: skip
    return Fitted(kept, datamodule, trainer, summary["value"], summary["tie"], step, metrics,
                  details)  # fmt: skip


def _mean_validation_baselines(per_fold: list[Mapping[str, float]]) -> dict[str, float]:
    """The task's validation baselines (seasonal naive...) averaged over the folds, as the
    trial's value is."""
    names = {name for baselines in per_fold for name in baselines if name.startswith("val_")}
    return {
        name: statistics.fmean(b[name] for b in per_fold if name in b) for name in sorted(names)
    }


class FoldRun(NamedTuple):
    model: pl.LightningModule  # with its best epoch's weights
    datamodule: Any
    trainer: pl.Trainer


def fit_fold(
    context: TrialContext,
    trial: optuna.Trial,
    settings: Mapping[str, Any],
    recorder: TrialRecorder,
    fold: int,
) -> FoldRun:
    """One fold, fresh weights (seed + fold): trained with pruning, early stopping and the
    recorder, which keeps its best epoch's weights; the model comes back with them."""
    max_epochs = int(settings["max_epochs"])
    pl.seed_everything(context.seed + fold, verbose=False)
    fold_settings = {**settings, "seed": context.seed, "fold": fold}
    datamodule = context.task.build_datamodule(context.data, fold_settings)
    model = context.make_model(settings, datamodule)
    if context.accelerator == "gpu":
        torch.cuda.reset_peak_memory_stats()
    recorder.begin_fold(fold, fold * max_epochs)
    pruned_trial = PrunerSteps(trial, fold * max_epochs, context.reports)
    callbacks = _callbacks(context.space, pruned_trial, settings, recorder)
    trainer = make_trainer(settings, callbacks, context.accelerator, context.precision)
    fit(trainer, model, datamodule, recorder)
    if recorder.best_state is None:
        raise TrialFailed(
            f"metric {context.space.metric!r} was never logged; the task logs "
            f"{', '.join(sorted(trainer.callback_metrics)) or 'nothing'}"
        )
    model.load_state_dict(recorder.best_state)
    return FoldRun(model, datamodule, trainer)


class PrunerSteps:
    """The trial as Optuna's pruning callback sees it during fold k. Its epochs are
    reported after the earlier folds' (step = k * max_epochs + epoch), so the pruner
    compares every trial at the same fold and epoch and its budget spans all the folds; and
    only at the steps where the pruner can decide (`reports`): each report and check is a
    round trip to the storage, as long as a whole epoch of a small LSTM."""

    def __init__(
        self, trial: optuna.Trial, first_step: int, reports: Callable[[int], bool]
    ) -> None:
        self.trial, self.first_step, self.reports = trial, first_step, reports
        self.asking = False

    def report(self, value: float, step: int) -> None:
        self.asking = self.reports(self.first_step + step)
        if self.asking:
            self.trial.report(value, self.first_step + step)

    def should_prune(self) -> bool:
        return self.asking and self.trial.should_prune()


def _callbacks(
    space: SearchSpace, trial: Any, settings: Mapping[str, Any], recorder: TrialRecorder
) -> list[Callback]:
    """The recorder, Optuna's pruning callback and, with a patience, early stopping."""
    callbacks: list[Callback] = [recorder, PyTorchLightningPruningCallback(trial, space.metric)]
    if int(settings.get("patience") or 0) > 0:
        mode = "min" if space.direction == "minimize" else "max"
        callbacks.append(
            EarlyStopping(space.metric, patience=int(settings["patience"]), mode=mode)
        )
    return callbacks


def fit(
    trainer: pl.Trainer, model: pl.LightningModule, datamodule: Any, recorder: TrialRecorder
) -> None:
    """trainer.fit, but Ctrl-C / SIGTERM stay a KeyboardInterrupt: Lightning turns the
    first into sys.exit(1) (and ignores SIGINT from then on), and on SIGTERM raises its own
    SIGTERMException (a SystemExit with code 0) at a batch's end; either would end the whole
    study, exit code 0 included, without recording the trial or closing its runs."""
    try:
        trainer.fit(model, datamodule=datamodule)
    except SystemExit:
        if not (recorder.interrupted or signals.stop_requested()):
            raise
        signals.restore()
        raise KeyboardInterrupt from None
