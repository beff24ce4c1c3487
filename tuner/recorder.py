"""What a trial records while it trains (a Lightning callback): its metrics per epoch to
MLflow in batches, its best weights in memory, a NaN loss or a stop request as the end of
the trial; and the Trainer a trial runs in."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from tuner import signals
from tuner.errors import TrialFailed
from tuner.tracking import StudyTracker

FLUSH_SECONDS = 5.0  # how stale a running trial's curves in MLflow may get


class TrialRecorder(Callback):
    """Each epoch: record metrics (the training loss it averages itself: a task logs only
    what it validates, as `self.log` costs about 1 ms a batch), keep the best weights in
    memory, stop on NaN.

    Metrics reach MLflow in batches, at most FLUSH_SECONDS apart and at the trial's end: a
    store write per epoch cost more than the epoch itself on small LSTMs (benchmarks/)."""

    def __init__(
        self,
        tracker: StudyTracker,
        run_id: str,
        metric: str,
        direction: str,
        tie_breaker: tuple[str, float] | None = None,
    ) -> None:
        self.tracker, self.run_id = tracker, run_id
        self.metric, self.sign = metric, (1.0 if direction == "minimize" else -1.0)
        self.tie_breaker = tie_breaker
        self.epochs_run = 0  # validated epochs, every fold together
        self.begin_fold(0, 0)
        self.train_loss = EpochMean()
        self.interrupted = False
        self.on_epoch: Callable[[int, Mapping[str, float]], None] | None = None
        self.unsent: list[tuple[dict[str, float], int]] = []
        self.history: list[tuple[dict[str, float], int]] = []  # every record of the trial
        self.replay: list[tuple[dict[str, float], int]] = []  # a resumed trial's history
        self.on_replay: Callable[[list[tuple[dict[str, float], int]]], None] | None = None
        self.last_flush = time.monotonic()
        self.started = time.perf_counter()

    def begin_fold(self, fold: int, first_step: int) -> None:
        """Follow fold `fold` (fresh weights), whose epochs are recorded from `first_step`
        on: a trial's folds lie one after another on its curves, as they do for the pruner."""
        self.fold, self.first_step, self.fold_epochs = fold, first_step, 0
        self.best_value = self.sign * math.inf
        self.best_tie = math.inf  # the secondary metric at the best epoch, lower is better
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None

    def details(self, **extra: Any) -> dict[str, Any]:
        """What a trial's run closes with: `extra`, its epochs and its duration."""
        elapsed = round(time.perf_counter() - self.started, 3)
        return {**extra, "epochs": self.epochs_run, "duration_s": elapsed}

    def record(self, metrics: dict[str, float], step: int) -> None:
        self.unsent.append((metrics, step))
        self.history.append((metrics, step))
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
        signals.raise_if_user_stopped()  # a stop asked for while trials run lands here
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self.train_loss.add(loss, len(batch[0]) if isinstance(batch, (tuple, list)) else 1)

    def _close_train_epoch(self, trainer: pl.Trainer) -> None:
        """Record the epoch's mean training loss, and end the trial if it is not finite:
        checked once an epoch, as one number (a check per batch waits for a GPU every
        batch). Called when validation ends, and at the epoch's end when there is none."""
        if not self.train_loss.count:
            return
        mean = self.train_loss.pop()
        if not math.isfinite(mean):
            raise TrialFailed(f"train_loss became {mean} at epoch {trainer.current_epoch}")
        self.record({"train_loss": mean}, self.first_step + trainer.current_epoch)

    def on_validation_batch_end(self, *args: Any, **kwargs: Any) -> None:
        signals.raise_if_user_stopped()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """This epoch's training loss and validation metrics, recorded at its step."""
        if trainer.sanity_checking:
            return
        self._close_train_epoch(trainer)
        epoch = trainer.current_epoch
        metrics = _scalars(trainer)
        self.record(metrics, self.first_step + epoch)
        self.epochs_run += 1
        self.fold_epochs = epoch + 1
        if self.on_epoch:
            self.on_epoch(self.epochs_run, metrics)
        bad = [
            k for k in ("val_loss", self.metric) if k in metrics and not math.isfinite(metrics[k])
        ]
        if bad:
            raise TrialFailed(f"{bad[0]} became {metrics[bad[0]]} at epoch {epoch}")
        value = metrics.get(self.metric)
        if value is None:
            return
        tie = self._tie_score(metrics)
        if (self.sign * value, tie) < (self.sign * self.best_value, self.best_tie):
            self.best_value, self.best_tie, self.best_epoch = value, tie, epoch
            self.best_state = copy.deepcopy(pl_module.state_dict())

    def _tie_score(self, metrics: dict[str, float]) -> float:
        """The secondary metric, lower is better: between epochs of equal value (a small
        validation part gives many equal accuracies) the one with the better loss wins."""
        if self.tie_breaker is None or self.tie_breaker[0] not in metrics:
            return math.inf
        name, sign = self.tie_breaker
        return sign * metrics[name]

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_train_epoch(trainer)
        signals.raise_if_stopped()  # a preemption the trial's checkpoints did not handle

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Our signal handlers over the ones Lightning installed as the fit began: it would
        end the fit at the next batch on SIGTERM, where ours lets a preempted trial finish
        its epoch and save where it is (tuner.signals). A resumed fold: its saved curve
        goes to the new run, and to the pruner."""
        signals.restore()
        if self.replay:
            self.unsent = [*self.replay, *self.unsent]
            if self.on_replay:
                self.on_replay(self.replay)
            self.replay = []

    def state_dict(self) -> dict[str, Any]:
        """What a resume checkpoint keeps of the trial's record (tuner.preemption)."""
        names = ("fold", "first_step", "fold_epochs", "best_value", "best_tie", "best_epoch",
                 "best_state", "epochs_run", "history")  # fmt: skip
        return {name: getattr(self, name) for name in names}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for name, value in state_dict.items():
            setattr(self, name, value)
        self.replay = list(self.history)


class EpochMean:
    """A loss's weighted mean over an epoch, summed where the loss lives: reading it is
    the epoch's one wait for the device."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.count = 0

    def add(self, loss: torch.Tensor, weight: int) -> None:
        value = loss.detach().float() * weight
        self.total = value if self.total is None else self.total + value
        self.count += weight

    def pop(self) -> float:
        """The mean so far; starts the next epoch."""
        mean = float(self.total) / self.count if self.total is not None else math.nan
        self.total, self.count = None, 0
        return mean


def _scalars(trainer: pl.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


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
