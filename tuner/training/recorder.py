"""What a trial records while it trains (a callback of tuner.training.loop): its metrics per epoch
to MLflow in batches, its best weights in memory, a NaN loss as the end of the trial."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import lightning.pytorch as pl
import torch

from tuner.errors import TrialFailed
from tuner.tracking import StudyTracker
from tuner.tracking.writer import check_writer

FLUSH_SECONDS = 5.0  # how stale a running trial's curves in MLflow may get


class TrialRecorder:
    """Each epoch: record metrics (the loop's mean training loss and what the module
    validated), keep the best weights in memory, stop on NaN.

    Metrics reach MLflow in batches, at most FLUSH_SECONDS apart and at the trial's end: a
    store write per epoch cost more than the epoch itself on small LSTMs (benchmarks/)."""

    state_key = "recorder"  # its part of a resume checkpoint (tuner.training.loop)

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
        self.on_epoch: Callable[[int, Mapping[str, float]], None] | None = None
        self.unsent: list[tuple[dict[str, float], int]] = []
        self.sent: dict[str, Any] = {}  # each metric's latest point in MLflow (the tracker's)
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

    def flush(self, model_id: str | None = None) -> None:
        """Send what is not in MLflow yet (called at the end of every trial, however it
        ends); with `model_id`, link each metric's latest point to that logged model."""
        check_writer(self.tracker)  # a store lost mid-trial ends the sweep (recovery)
        if self.unsent or model_id is not None:
            sent = self.tracker.log_history(self.run_id, self.unsent, model_id, self.sent)
            self.sent.update(sent)
            self.unsent = []
        self.last_flush = time.monotonic()

    def on_fit_start(self, loop: Any) -> None:
        """A resumed fold: its saved curve goes to the new run, and to the pruner."""
        if self.replay:
            self.unsent = [*self.replay, *self.unsent]
            if self.on_replay:
                self.on_replay(self.replay)
            self.replay = []

    def on_epoch_end(
        self, loop: Any, model: pl.LightningModule, metrics: dict[str, float]
    ) -> None:
        """The epoch's training loss and validation metrics, recorded at its step; the
        trial ends if a loss is not finite (checked once an epoch, as one number: a check
        per batch waits for a GPU every batch)."""
        epoch = loop.epoch
        loss = metrics.get("train_loss", 0.0)
        if not math.isfinite(loss):
            raise TrialFailed(f"train_loss became {loss} at epoch {epoch}")
        self.record(dict(metrics), self.first_step + epoch)
        if len(metrics) == 1:  # no validation part (a refit): nothing to choose from
            return
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
            self.best_state = copy.deepcopy(model.state_dict())

    def _tie_score(self, metrics: dict[str, float]) -> float:
        """The secondary metric, lower is better: between epochs of equal value (a small
        validation part gives many equal accuracies) the one with the better loss wins."""
        if self.tie_breaker is None or self.tie_breaker[0] not in metrics:
            return math.inf
        name, sign = self.tie_breaker
        return sign * metrics[name]

    def state_dict(self) -> dict[str, Any]:
        """What a resume checkpoint keeps of the trial's record (tuner.training.preemption)."""
        names = ("fold", "first_step", "fold_epochs", "best_value", "best_tie", "best_epoch",
                 "best_state", "epochs_run", "history")  # fmt: skip
        return {name: getattr(self, name) for name in names}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for name, value in state_dict.items():
            setattr(self, name, value)
        self.replay = list(self.history)
