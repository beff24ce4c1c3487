"""What a forecaster looks at in `tuner report`: the best model's forecasts against the
actuals on the test part, with the window it read, in the series' own units."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import torch

from tuner.tasks.forecasting.frames import to_original_units

SHOWN = 4  # test windows drawn (the first series' last ones)


def report_views(model: Any, datamodule: Any) -> list[tuple[str, Callable[[], None]]]:
    batch = next(iter(datamodule.test_dataloader()), None)
    if batch is None:
        return []
    x, _, loc, scale, actual = (part[:SHOWN] for part in batch)
    transform = model.hparams.transform
    with torch.no_grad():
        forecast = to_original_units(model.eval()(x, loc, scale), loc, scale, transform)
    window = to_original_units(x, loc, scale, transform)

    def draw() -> None:
        _, axes = plt.subplots(1, len(x), squeeze=False)
        for k, axis in enumerate(axes[0]):
            before, after = range(-window.shape[1], 0), range(actual.shape[1])
            axis.plot(before, window[k], color="0.6", label="input window")
            axis.plot(after, actual[k], marker=".", label="actual")
            axis.plot(after, forecast[k], marker=".", label="forecast")
            axis.set_xlabel("step (0: first forecast)")
        axes[0][0].legend(fontsize=8)
        plt.suptitle("forecast against actual, test part")

    title = f"Forecast against actual on the test part ({len(x)} window(s), best model)"
    return [(title, draw)]
