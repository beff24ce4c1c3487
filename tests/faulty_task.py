"""A real forecasting task that misbehaves on purpose at a chosen epoch (NaN loss, out of
memory, an exception), to test that the framework contains trial faults. Named by dotted
path: `--task tests.faulty_task`."""

from __future__ import annotations

import dataclasses
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
        if self.trainer.current_epoch < self.fault_epoch or self.fault == "none":
            return loss
        if self.fault == "nan":
            return loss * float("nan")
        if self.fault == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        raise RuntimeError("boom: a bug in the model code")


def build_model(settings: Mapping[str, Any], datamodule: Any) -> FaultyLSTM:
    return FaultyLSTM(settings["fault"], settings["fault_epoch"], **SPEC.model_args(settings))


TASK = dataclasses.replace(FORECASTING, spec=SPEC, build_model=build_model, model_class=FaultyLSTM)
