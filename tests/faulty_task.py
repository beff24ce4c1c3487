"""A real forecasting task that misbehaves on purpose at a chosen epoch (NaN loss, out of
memory, an exception), to test that the framework contains trial faults. Named by dotted
path: `--task tests.faulty_task`."""

from __future__ import annotations

import dataclasses
import importlib
import os
import signal
from collections.abc import Mapping
from typing import Any

import torch

from tuner.config.settings import Setting
from tuner.tasks.forecasting.spec import SPEC as FORECASTING_SPEC
from tuner.tasks.forecasting.task import TASK as FORECASTING
from tuner.tasks.forecasting.task import ForecastLSTM

SPEC = dataclasses.replace(
    FORECASTING_SPEC,
    name="tests.faulty_task",
    settings=(
        *FORECASTING_SPEC.settings,
        Setting("fault", "none", "what goes wrong", choices=("none", "nan", "oom", "error")),
        Setting("fault_epoch", 0, "from which epoch", low=0),
    ),
)


class FaultyLSTM(ForecastLSTM):
    def __init__(self, fault: str = "none", fault_epoch: int = 0, **model_args: Any) -> None:
        super().__init__(**model_args)
        self.fault, self.fault_epoch = fault, fault_epoch

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        if self.trainer.current_epoch < self.fault_epoch:
            return loss
        if os.environ.get("FAULTY_KILL") == "mid-epoch":  # as a machine that dies
            os.kill(os.getpid(), signal.SIGKILL)
        if self.fault == "none":
            return loss
        if self.fault == "nan":
            return loss * float("nan")
        if self.fault == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        raise RuntimeError("boom: a bug in the model code")


def build_model(settings: Mapping[str, Any], datamodule: Any) -> FaultyLSTM:
    return FaultyLSTM(settings["fault"], settings["fault_epoch"], **SPEC.model_args(settings))


TASK = dataclasses.replace(FORECASTING, spec=SPEC, build_model=build_model, model_class=FaultyLSTM)


def _kill_after(owner: Any, method: str) -> None:
    """`owner.method` runs, then this process is SIGKILLed: nothing after it is recorded."""
    original = getattr(owner, method)

    def killed(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, method, killed)


# FAULTY_KILL names the moment a trial's process is killed (tests/test_faults.py):
# `created`: right after Optuna creates the trial, before its first heartbeat or attribute;
# `mid-epoch`: in a training step of epoch `fault_epoch`; `recording`: when the finished
# trial's MLflow run is being closed.
_KILL_POINTS = {
    "created": ("optuna.study", "Study", "ask"),
    "recording": ("tuner.tracking.study_runs", "StudyTracker", "end_trial"),
}
if os.environ.get("FAULTY_KILL") in _KILL_POINTS:
    module, owner, method = _KILL_POINTS[os.environ["FAULTY_KILL"]]
    _kill_after(getattr(importlib.import_module(module), owner), method)
