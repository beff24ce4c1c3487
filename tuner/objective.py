"""One trial: params -> task data + model -> Trainer (pruning, best weights) -> metric value.

The objective knows no task: everything task-specific comes through the Task contract.
"""

from __future__ import annotations

import copy
import math
import os
import socket
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import optuna
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from optuna.trial import TrialState
from optuna_integration import PyTorchLightningPruningCallback

from tuner import keys, signals
from tuner.checkpoints import save_checkpoint
from tuner.devices import describe
from tuner.errors import TrialFailed
from tuner.recovery import environment_failure
from tuner.report import best_trial
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
    on_epoch: Callable[[int, int, int, Mapping[str, float]], None] | None = None


FLUSH_SECONDS = 5.0  # how stale a running trial's curves in MLflow may get


class TrialRecorder(Callback):
    """Each epoch: record metrics, keep the best weights in memory, stop on NaN.

    Metrics reach MLflow in batches, at most FLUSH_SECONDS apart and at the trial's end: a
    store write per epoch cost more than the epoch itself on small LSTMs (benchmarks/)."""

    def __init__(self, tracker: StudyTracker, run_id: str, metric: str, direction: str) -> None:
        self.tracker, self.run_id = tracker, run_id
        self.metric, self.sign = metric, (1.0 if direction == "minimize" else -1.0)
        self.best_value = self.sign * math.inf
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.epochs_run = 0
        self.interrupted = False
        self.on_epoch: Callable[[int, Mapping[str, float]], None] | None = None
        self.unsent: list[tuple[dict[str, float], int]] = []
        self.last_flush = time.monotonic()

    def record(self, metrics: dict[str, float], step: int) -> None:
        self.unsent.append((metrics, step))
        if time.monotonic() - self.last_flush > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Send what is not in MLflow yet (called at the end of every trial, however it ends)."""
        if self.unsent:
            self.tracker.log_history(self.run_id, self.unsent)
            self.unsent = []
        self.last_flush = time.monotonic()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self.interrupted = isinstance(exception, KeyboardInterrupt)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        signals.raise_if_stopped()  # a stop asked for while trials run lands here, safely
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and not torch.isfinite(loss).item():
            raise TrialFailed(
                f"train_loss became {loss.item()} at epoch "
                f"{trainer.current_epoch}, batch {batch_idx}"
            )

    def on_validation_batch_end(self, *args: Any, **kwargs: Any) -> None:
        signals.raise_if_stopped()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Validation metrics of this epoch (train_* are final only at the epoch's end)."""
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch
        metrics = _scalars(trainer, lambda key: not key.startswith("train_"))
        self.record(metrics, epoch)
        self.epochs_run = epoch + 1
        if self.on_epoch:
            self.on_epoch(self.epochs_run, metrics)
        bad = [
            k for k in ("val_loss", self.metric) if k in metrics and not math.isfinite(metrics[k])
        ]
        if bad:
            raise TrialFailed(f"{bad[0]} became {metrics[bad[0]]} at epoch {epoch}")
        value = metrics.get(self.metric)
        if value is not None and self.sign * value < self.sign * self.best_value:
            self.best_value, self.best_epoch = value, epoch
            self.best_state = copy.deepcopy(pl_module.state_dict())

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.record(_scalars(trainer, lambda key: key.startswith("train_")), trainer.current_epoch)


def _scalars(trainer: pl.Trainer, keep: Callable[[str], bool]) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1 and keep(k)}


def make_trainer(
    settings: Mapping[str, Any],
    callbacks: list[Callback],
    accelerator: str,
    precision: str = "32-true",
) -> pl.Trainer:
    """A Trainer without what a trial does not need (logger, progress bar, summary, sanity
    check, per-epoch checkpoint files): each costs time on every epoch of a small LSTM."""
    return pl.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_epochs=int(settings["max_epochs"]),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        gradient_clip_val=settings.get("grad_clip") or None,
        callbacks=callbacks,
    )


class TargetReached(Exception):
    """Another process finished the study's last trials while this one was asking."""


def run_trial(context: TrialContext, trial: optuna.Trial) -> float:
    """Optuna objective: the best epoch's metric (its weights are what gets checkpointed).
    A failure of the machine rather than the params (full disk, a store that stopped
    answering) marks the trial FATAL: the study stops instead of failing trial after trial."""
    trial.set_user_attr(keys.WORKER, f"{socket.gethostname()}:{os.getpid()}")
    try:
        return _run_trial(context, trial)
    except KeyboardInterrupt:  # also when the stop came before training started
        trial.set_user_attr(keys.FAIL_REASON, keys.INTERRUPTED)
        raise
    except Exception as exc:
        reason = environment_failure(exc)
        if reason:
            trial.set_user_attr(keys.FAIL_REASON, reason)
            trial.set_user_attr(keys.FATAL, reason)
        elif keys.FAIL_REASON not in trial.user_attrs:  # failed before training started
            trial.set_user_attr(keys.FAIL_REASON, failure_reason(exc))
        raise


def _run_trial(context: TrialContext, trial: optuna.Trial) -> float:
    space, task = context.space, context.task
    signals.raise_if_stopped()
    if _target_reached(trial, context.target):
        trial.set_user_attr(keys.SKIPPED, True)
        trial.set_user_attr(keys.FAIL_REASON, "not run: the study reached its target meanwhile")
        trial.study.stop()
        raise TargetReached("the study reached its target in another process")
    params = space.suggest(trial)
    settings = {**task.defaults, **space.fixed, **params}  # what the model is built from
    trial.set_user_attr(keys.SETTINGS, settings)
    device = describe(context.accelerator)
    trial.set_user_attr(keys.DEVICE, device)
    run_id = context.tracker.start_trial(trial.number, settings, device)
    trial.set_user_attr(keys.RUN_ID, run_id)
    started = time.perf_counter()
    recorder = TrialRecorder(context.tracker, run_id, space.metric, space.direction)
    if context.on_epoch:
        recorder.on_epoch = lambda epoch, metrics: context.on_epoch(
            trial.number, epoch, int(settings["max_epochs"]), metrics
        )
    try:
        try:
            value, details = _fit_and_test(context, trial, settings, recorder)
        finally:
            recorder.flush()  # however the trial ends, its curves are complete in MLflow
            free_memory()
    except KeyboardInterrupt:
        context.tracker.end_trial(
            run_id,
            trial.number,
            "INTERRUPTED",
            {"epochs": recorder.epochs_run, "duration_s": round(time.perf_counter() - started, 3)},
        )
        raise
    except optuna.TrialPruned:
        details = {
            "pruned_at_epoch": recorder.epochs_run - 1,
            "epochs": recorder.epochs_run,
            "duration_s": round(time.perf_counter() - started, 3),
        }
        trial.set_user_attr(keys.PRUNED_AT, recorder.epochs_run - 1)
        context.tracker.end_trial(run_id, trial.number, "PRUNED", details)
        raise
    except Exception as exc:
        _record_failure(context, trial, run_id, exc, recorder, started)
        raise
    details["duration_s"] = round(time.perf_counter() - started, 3)
    context.tracker.end_trial(run_id, trial.number, "COMPLETE", details)
    return value


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
    context: TrialContext, trial: optuna.Trial, settings: dict[str, Any], recorder: TrialRecorder
) -> tuple[float, dict[str, Any]]:
    task, space = context.task, context.space
    pl.seed_everything(context.seed, verbose=False)
    datamodule = task.build_datamodule(context.data, {**settings, "seed": context.seed})
    model = context.make_model(settings, datamodule)
    callbacks: list[Callback] = [recorder, PyTorchLightningPruningCallback(trial, space.metric)]
    if int(settings.get("patience") or 0) > 0:
        callbacks.append(
            EarlyStopping(
                space.metric,
                patience=int(settings["patience"]),
                mode="min" if space.direction == "minimize" else "max",
            )
        )
    if context.accelerator == "gpu":
        torch.cuda.reset_peak_memory_stats()
    trainer = make_trainer(settings, callbacks, context.accelerator, context.precision)
    fit(trainer, model, datamodule, recorder)
    if recorder.best_state is None:
        raise TrialFailed(
            f"metric {space.metric!r} was never logged; the task logs "
            f"{', '.join(sorted(trainer.callback_metrics)) or 'nothing'}"
        )
    model.load_state_dict(recorder.best_state)
    baselines = dict(task.baselines(datamodule))
    trial.set_user_attr(keys.BASELINE_KEYS, sorted(baselines))
    final = dict(baselines)
    has_test = type(datamodule).test_dataloader is not pl.LightningDataModule.test_dataloader
    test_batches = datamodule.test_dataloader() if has_test else []
    if len(test_batches):
        tested = trainer.test(model, dataloaders=test_batches, verbose=False)
        final.update({k: float(v) for k, v in (tested[0] if tested else {}).items()})
    final[f"best_{space.metric}"] = recorder.best_value
    if context.accelerator == "gpu":
        final["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
        trial.set_user_attr(keys.GPU_PEAK, round(final["gpu_peak_mib"], 1))
    recorder.record(final, recorder.best_epoch)
    for key, value in final.items():
        if key.startswith("test_"):
            trial.set_user_attr(key, value)
    _keep_if_best(context, trial, model, settings, recorder)
    return recorder.best_value, {"best_epoch": recorder.best_epoch, "epochs": recorder.epochs_run}


def fit(
    trainer: pl.Trainer, model: pl.LightningModule, datamodule: Any, recorder: TrialRecorder
) -> None:
    """trainer.fit, but Ctrl-C / SIGTERM stay a KeyboardInterrupt: Lightning turns them
    into sys.exit(1) and ignores SIGINT from then on, which would end the whole study
    without recording the trial or closing its runs."""
    try:
        trainer.fit(model, datamodule=datamodule)
    except SystemExit:
        if not recorder.interrupted:
            raise
        signals.restore()
        raise KeyboardInterrupt from None


def _keep_if_best(
    context: TrialContext,
    trial: optuna.Trial,
    model: pl.LightningModule,
    settings: dict[str, Any],
    recorder: TrialRecorder,
) -> None:
    """Checkpoint, log and register the weights only when this trial beats the study's best."""
    best = best_trial(trial.study)
    sign = recorder.sign
    if best is not None and sign * recorder.best_value >= sign * best.value:
        return
    meta = {
        "study": context.tracker.study_name,
        "trial": trial.number,
        "metric": context.space.metric,
        "direction": context.space.direction,
        "value": recorder.best_value,
        "best_epoch": recorder.best_epoch,
        "run_id": recorder.run_id,
        "data_args": dict(context.data_args),
        **context.tracker.tags,
    }
    path = context.checkpoint_dir / f"trial-{trial.number}.ckpt"
    save_checkpoint(path, model, context.task.name, settings, meta)
    source = context.tracker.log_checkpoint(recorder.run_id, path)
    version = context.tracker.register_best(recorder.run_id, source, {"trial": str(trial.number)})
    path.unlink(missing_ok=True)
    trial.set_user_attr(keys.CHECKPOINT_URI, source)
    trial.set_user_attr(keys.MODEL_VERSION, version)


def _record_failure(
    context: TrialContext,
    trial: optuna.Trial,
    run_id: str,
    exc: Exception,
    recorder: TrialRecorder,
    started: float,
) -> None:
    if environment_failure(exc):
        return  # the stores may be what failed: run_trial records it, the next run closes the run
    reason = failure_reason(exc)
    trial.set_user_attr(keys.FAIL_REASON, reason)
    context.tracker.log_text(run_id, traceback.format_exc(), "traceback.txt")
    context.tracker.end_trial(
        run_id,
        trial.number,
        "FAIL",
        {
            keys.FAIL_REASON: reason,
            "epochs": recorder.epochs_run,
            "duration_s": round(time.perf_counter() - started, 3),
        },
    )


def failure_reason(exc: Exception) -> str:
    """One line a person can act on: the exception's type and first line."""
    reason = str(exc) if isinstance(exc, TrialFailed) else f"{type(exc).__name__}: {exc}"
    reason = (reason.splitlines() or [""])[0][:500]
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        reason = f"out of memory: {reason}"
    return reason


def free_memory() -> None:
    """Give the GPU memory a trial cached back to the other trials sharing the GPU (the
    study's optimize(gc_after_trial=True) already collects the trial's Python objects)."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
