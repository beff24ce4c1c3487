"""How a task's LightningModule trains and is evaluated: a loop on Lightning Fabric, which
brings the device, the precision (autocast, gradient scaling), gradient clipping and the
checkpoint I/O; the module keeps its own steps, epoch hooks and `configure_optimizers`.

Lightning's Trainer cost 1.7x a plain PyTorch loop on a small LSTM's epochs with nothing
but the model in it (per-batch hooks, result collections, progress tracking:
benchmarks/JOURNAL.md); this loop calls its callbacks once an epoch, where a trial's
decisions are made. A callback is any object with some of these methods, called through
Fabric (`Fabric.call`):

- `on_fit_start(loop)`: the fit begins (after a resume checkpoint was loaded);
- `on_epoch_end(loop, model, metrics)`: an epoch trained and validated; `metrics` holds
  `train_loss` and what the module logged (`self.log`) while validating. Raise to end
  the fit (a pruned or failed trial), or set `loop.should_stop`;
- `state_key`, `state_dict()`, `load_state_dict(state)`: what a resume checkpoint keeps
  of it (under its `state_key`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib.metadata import entry_points
from itertools import islice
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric import Fabric
from lightning.fabric.loggers import Logger

from tuner.config.budget import batch_cap
from tuner.contract.tensors import TensorData
from tuner.runtime import signals

EVALUATION_HOOKS = {"val": "validation", "test": "test"}
FABRIC_CALLBACKS = "lightning.fabric.callbacks_factory"  # the entry points Fabric reads


class LoopFabric(Fabric):
    """Fabric, with what a LightningModule may read from `self.trainer` under this loop
    (Lightning routes it to the Fabric object): the epoch it is in and the number of
    optimizer steps the fit takes (for one-cycle schedules)."""

    current_epoch: int = 0
    estimated_stepping_batches: int = 1

    @staticmethod
    def _configure_callbacks(callbacks: Any) -> list[Any]:
        """Fabric's own, less its scan of every installed package's entry points when none
        registers a callback factory: a trial makes two Fabrics, and the scan cost 3 ms
        each (benchmarks/RESULTS.md)."""
        if _callback_factories():
            return Fabric._configure_callbacks(callbacks)
        return list(callbacks or [])


@cache
def _callback_factories() -> bool:
    """Whether an installed package registers Fabric callbacks (the set installed does not
    change while a process runs)."""
    return bool(entry_points(group=FABRIC_CALLBACKS))


class LoggedMetrics(Logger):
    """What the module logs with `self.log` / `self.log_dict` (Lightning sends it to the
    Fabric's loggers): the latest value of each name, read once an epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return "logged"

    @property
    def version(self) -> int:
        return 0

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self.values.update(metrics)

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def pop(self) -> dict[str, float]:
        """The scalars logged since the last pop (one device sync each)."""
        return {name: float(value) for name, value in self.take().items()}

    def take(self) -> dict[str, Any]:
        """The scalars logged since the last take, as logged (tensors stay on the device)."""
        values, self.values = self.values, {}
        return {
            name: value
            for name, value in values.items()
            if not isinstance(value, torch.Tensor) or value.numel() == 1
        }


class StepMeans:
    """What a module logs in each evaluation step, averaged over the epoch weighted by
    the batch's size, as Lightning's Trainer does for `self.log` in a step (on_epoch,
    mean): the last batch alone would decide a metric otherwise. Summed where it lives."""

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.weights: dict[str, int] = {}

    def add(self, logged: Mapping[str, Any], weight: int) -> None:
        for name, value in logged.items():
            value = value.detach().float() if isinstance(value, torch.Tensor) else float(value)
            self.sums[name] = self.sums.get(name, 0.0) + value * weight
            self.weights[name] = self.weights.get(name, 0) + weight

    def means(self) -> dict[str, float]:
        return {name: float(total) / self.weights[name] for name, total in self.sums.items()}


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


class EarlyStopping:
    """Lightning's early-stopping rule: stop once `patience` validated epochs in a row did
    not strictly improve on the best value of `metric`."""

    state_key = "early_stopping"

    def __init__(self, metric: str, patience: int, direction: str) -> None:
        self.metric, self.patience = metric, patience
        self.sign = 1.0 if direction == "minimize" else -1.0
        self.best, self.wait = math.inf, 0

    def on_epoch_end(self, loop: FitLoop, model: pl.LightningModule, metrics: dict) -> None:
        if self.metric not in metrics:
            return
        score = self.sign * metrics[self.metric]
        self.best, self.wait = (score, 0) if score < self.best else (self.best, self.wait + 1)
        if self.wait >= self.patience:
            loop.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best, self.wait = state["best"], state["wait"]


class FitLoop:
    """Trains a module for `max_epochs` (or until a callback stops it), validating after
    every epoch; `evaluate` runs a validation or test pass."""

    def __init__(
        self,
        accelerator: str = "cpu",
        precision: str = "32-true",
        max_epochs: int = 1,
        grad_clip: float | None = None,
        callbacks: Sequence[Any] = (),
    ) -> None:
        self.logged = LoggedMetrics()
        self.fabric = LoopFabric(
            accelerator=accelerator,
            devices=1,
            precision=precision,  # type: ignore[arg-type]
            callbacks=list(callbacks),
            loggers=[self.logged],
        )
        self.callbacks = list(callbacks)
        self.max_epochs, self.grad_clip = max_epochs, grad_clip or None
        self.epoch, self.should_stop = 0, False
        self.metrics: dict[str, float] = {}
        self._state: dict[str, Any] = {}

    def fit(self, model: pl.LightningModule, datamodule: Any, start: Path | None = None) -> None:
        """Train `model` on the datamodule's training batches, validating on its
        validation batches (if any) after each epoch; from a resume checkpoint (`start`,
        written by `save`): from the epoch after the one it saved."""
        if isinstance(datamodule, TensorData):
            datamodule.place_training_split(self.fabric.device)
        train, val = datamodule.train_dataloader(), datamodule.val_dataloader()
        self.fabric.estimated_stepping_batches = max(1, self.max_epochs * len(train))
        wrapped, optimizer, scheduler, per_step = self._setup(model)
        first = self._restore(start) if start else 0
        self.fabric.call("on_fit_start", loop=self)
        try:
            for epoch in range(first, self.max_epochs):
                self.epoch = self.fabric.current_epoch = epoch
                loss = self._train_epoch(
                    wrapped, model, optimizer, scheduler if per_step else None, train
                )
                self.metrics = {"train_loss": loss}
                if len(val):
                    self.metrics.update(self._evaluate(wrapped, model, val, "val"))
                self.fabric.call("on_epoch_end", loop=self, model=model, metrics=self.metrics)
                signals.raise_if_stopped()  # a preemption no callback saved a checkpoint for
                if scheduler is not None and not per_step:
                    scheduler.step()
                if self.should_stop:
                    break
        finally:
            release(model)

    def _setup(self, model: pl.LightningModule) -> tuple[torch.nn.Module, Any, Any, bool]:
        """The module on its device, then its optimizers (they may read `self.trainer`,
        which Lightning routes to the Fabric the module was set up with)."""
        wrapped = self.fabric.setup_module(model)
        optimizer, scheduler, per_step = optimizers_of(model.configure_optimizers())
        optimizer = self.fabric.setup_optimizers(optimizer)
        self._state = {"model": model, "optimizer": optimizer}
        if scheduler is not None:
            self._state["scheduler"] = scheduler
        return wrapped, optimizer, scheduler, per_step

    def _train_epoch(
        self,
        wrapped: torch.nn.Module,
        model: pl.LightningModule,
        optimizer: Any,
        scheduler: Any,
        batches: Iterable[Any],
    ) -> float:
        """One pass over the training batches; their mean loss, weighted by batch size."""
        wrapped.train()
        model.on_train_epoch_start()
        mean, on_device = EpochMean(), self.fabric.device.type != "cpu"
        for index, batch in enumerate(islice(batches, batch_cap()[0])):
            signals.raise_if_user_stopped()  # a stop asked for while trials run lands here
            if on_device:
                batch = self.fabric.to_device(batch)
            output = wrapped.training_step(batch, index)
            loss = output["loss"] if isinstance(output, Mapping) else output
            optimizer.zero_grad(set_to_none=True)
            self.fabric.backward(loss)
            if self.grad_clip:
                self.fabric.clip_gradients(  # a NaN loss ends the trial at the epoch's end
                    wrapped, optimizer, max_norm=self.grad_clip, error_if_nonfinite=False
                )
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            mean.add(loss, batch_items(batch))
        model.on_train_epoch_end()
        return mean.pop()

    def _evaluate(
        self, wrapped: torch.nn.Module, model: pl.LightningModule, batches: Any, stage: str
    ) -> dict[str, float]:
        hook = EVALUATION_HOOKS[stage]
        wrapped.eval()
        self.logged.pop()
        getattr(model, f"on_{hook}_epoch_start")()
        step, means = getattr(wrapped, f"{hook}_step"), StepMeans()
        with torch.no_grad():
            for index, batch in enumerate(batches):
                signals.raise_if_user_stopped()
                step(self.fabric.to_device(batch), index)
                means.add(self.logged.take(), batch_items(batch))
            getattr(model, f"on_{hook}_epoch_end")()
        wrapped.train()
        return {**means.means(), **self.logged.pop()}  # what the epoch's end logs wins

    def evaluate(self, model: pl.LightningModule, batches: Any, stage: str) -> dict[str, float]:
        """A validation (`stage` "val") or test pass over `batches`: what the module logs."""
        wrapped = self.fabric.setup_module(model)
        try:
            return self._evaluate(wrapped, model, batches, stage)
        finally:
            release(model)

    def save(self, path: Path) -> None:
        """The fit's whole state at the end of the current epoch (weights, optimizer,
        scheduler, epoch, every stateful callback) to `path`, through Fabric."""
        state = {**self._state, "epoch": self.epoch}
        for callback in self.callbacks:
            if hasattr(callback, "state_dict"):
                state[callback.state_key] = callback.state_dict()
        self.fabric.save(path, state)

    def _restore(self, path: Path) -> int:
        """Load a `save`d state (tensors and plain values only); the epoch to go on from."""
        rest = self.fabric.load(path, self._state, weights_only=True)
        for callback in self.callbacks:
            if hasattr(callback, "load_state_dict") and callback.state_key in rest:
                callback.load_state_dict(rest[callback.state_key])
        return int(rest["epoch"]) + 1


def optimizers_of(configured: Any) -> tuple[torch.optim.Optimizer, Any, bool]:
    """What `configure_optimizers` returned: an optimizer, or Lightning's dictionary of an
    optimizer and an lr scheduler (`interval` "epoch", the default, or "step"), as the
    optimizer, the scheduler (or None) and whether it steps every batch."""
    if isinstance(configured, torch.optim.Optimizer):
        return configured, None, False
    if isinstance(configured, Mapping) and isinstance(
        configured.get("optimizer"), torch.optim.Optimizer
    ):
        schedule = configured.get("lr_scheduler")
        if schedule is None:
            return configured["optimizer"], None, False
        if not isinstance(schedule, Mapping):
            schedule = {"scheduler": schedule}
        return configured["optimizer"], schedule["scheduler"], schedule.get("interval") == "step"
    raise TypeError(
        "configure_optimizers must return an optimizer, or a dictionary with 'optimizer' and "
        f"perhaps 'lr_scheduler'; got {type(configured).__name__}"
    )


def batch_items(batch: Any) -> int:
    """How many items a batch holds (its first tensor's length), to weight its loss."""
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return len(first) if isinstance(first, torch.Tensor) and first.dim() else 1


def release(model: pl.LightningModule) -> None:
    """Detach the module from the Fabric it was set up with: `self.log` outside a loop,
    a deep copy or a pickle of the model must not reach it."""
    model._fabric = None
    model._fabric_optimizers = []


def evaluate(
    model: pl.LightningModule,
    batches: Any,
    stage: str,
    accelerator: str = "cpu",
    precision: str = "32-true",
) -> dict[str, float]:
    """A validation or test pass of `model` over `batches`: the metrics it logs."""
    return FitLoop(accelerator, precision).evaluate(model, batches, stage)
