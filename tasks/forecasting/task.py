"""Time-series forecasting: CSV series -> windows of input_len -> horizon -> LSTM + head.

Splits are chronological per series: the last `test_size` steps are the test part, the
`val_size` before them validation, the rest training. Values are optionally put on a
symmetric log scale, then normalised either per input window (the window's own mean and
std: robust to trends, as NeuralForecast does) or per series with statistics of the
training part only. The head reads every step from the last hidden state (`last`) or each
step from the state one horizon before it (`aligned`). Metrics are in original units.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch

from tuner.contract.task import Task
from tuner.contract.tensors import TensorData
from tuner.errors import DataError
from tuner.tasks.forecasting.baselines import baseline_metrics, statistical_baselines
from tuner.tasks.forecasting.data import SeriesSet, read_series, spans, split_points
from tuner.tasks.forecasting.frames import normalise, reframe, symlog, to_original_units
from tuner.tasks.forecasting.model import ForecastLSTM
from tuner.tasks.forecasting.space import fit_space
from tuner.tasks.forecasting.spec import SPEC
from tuner.tasks.forecasting.timeaxis import future
from tuner.tasks.forecasting.views import report_views

DEFAULTS: dict[str, Any] = SPEC.defaults
DATA = Path(__file__).parents[1] / "data"  # the shipped demo data (tasks/data)


# ---------------------------------------------------------------- windows and scaling


def _windows(
    values: np.ndarray, input_len: int, horizon: int, first_target: int, last_target: int
) -> tuple[np.ndarray, np.ndarray]:
    """All (input, target) windows whose target lies within [first_target, last_target)."""
    starts = range(max(first_target, input_len), last_target - horizon + 1)
    x = [values[t - input_len : t] for t in starts]
    y = [values[t : t + horizon] for t in starts]
    return np.asarray(x, dtype=np.float64).reshape(-1, input_len), np.asarray(
        y, dtype=np.float64
    ).reshape(-1, horizon)


def make_tensors(
    values: np.ndarray, train_end: int, span: tuple[int, int], settings: Mapping[str, Any]
) -> tuple[torch.Tensor, ...]:
    """(x_norm, y_norm, loc, scale, y_raw) for the windows whose target lies in `span`."""
    transformed = symlog(values) if settings["transform"] == "log" else values
    x, y = _windows(transformed, int(settings["input_len"]), int(settings["horizon"]), *span)
    _, y_raw = _windows(values, int(settings["input_len"]), int(settings["horizon"]), *span)
    loc, scale = normalise(x, transformed[:train_end], settings["scaling"])
    arrays = ((x - loc) / scale, (y - loc) / scale, loc, scale, y_raw)
    return tuple(torch.as_tensor(a, dtype=torch.float32) for a in arrays)


def _concat(parts: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    return tuple(torch.cat(column) for column in zip(*parts, strict=True))


# ---------------------------------------------------------------- data module


class ForecastData(TensorData):
    """Train / val / test windows of every series, as in-memory tensors."""

    eval_batch_size = 4096

    def __init__(self, data: SeriesSet, settings: Mapping[str, Any], seed: int = 0) -> None:
        super().__init__(settings, seed)
        fold = settings.get("fold", 0)
        parts: dict[str, list] = {"train": [], "val": [], "test": []}
        for series in data.series:
            split = split_points(len(series.values), settings, fold)
            for stage, span in spans(split, len(series.values)).items():
                parts[stage].append(make_tensors(series.values, split.val_start, span, settings))
        self.tensors = {stage: _concat(chunks) for stage, chunks in parts.items()}
        self.baseline_metrics = baseline_metrics(data, settings, fold)


# ---------------------------------------------------------------- model


def build_model(settings: Mapping[str, Any], datamodule: pl.LightningDataModule) -> ForecastLSTM:
    return ForecastLSTM(**SPEC.model_args(settings))


# ---------------------------------------------------------------- contract glue


def add_data_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("forecasting data")
    group.add_argument(
        "--data",
        help="CSV: long (unique_id, ds, y) or wide (time column + "
        "target columns); default: the shipped airline passengers series",
    )
    group.add_argument("--time-col", help="wide CSV: the time column (default: the first)")
    group.add_argument(
        "--target", help="wide CSV: comma-separated target columns (default: every other column)"
    )
    group.add_argument(
        "--date-format",
        help="how the time column writes dates, as strftime codes (e.g. %%d/%%m/%%Y); default: "
        "integers stay integer steps, dates are read by the one form that fits every row",
    )


def build_datamodule(data: SeriesSet, settings: Mapping[str, Any]) -> ForecastData:
    return ForecastData(data, settings, seed=int(settings.get("seed", 0)))


def predict(
    model: ForecastLSTM,
    data_args: Mapping[str, Any],
    settings: Mapping[str, Any],
    options: Mapping[str, Any],
) -> pd.DataFrame:
    """The next `horizon` steps after each series' last value, in original units."""
    data = read_series(data_args)
    hp = model.hparams
    rows = []
    model.eval()
    for series in data.series:
        values = series.values
        if len(values) < hp.input_len:
            raise DataError(
                f"{data.path}: series {series.uid!r} has {len(values)} values; "
                f"the model needs the last {hp.input_len}"
            )
        transformed = symlog(values) if hp.transform == "log" else values
        x = transformed[len(values) - hp.input_len :][None, :]
        loc, scale = normalise(x, transformed, hp.scaling)
        loc, scale = (torch.as_tensor(a, dtype=torch.float32) for a in (loc, scale))
        with torch.no_grad():
            x_norm = (torch.tensor(x, dtype=torch.float32) - loc) / scale
            y = to_original_units(model(x_norm, loc, scale), loc, scale, hp.transform)
        ahead = future(series.times, data.freq, hp.horizon)
        rows.append(pd.DataFrame({"unique_id": series.uid, "ds": ahead, "y_hat": y[0].numpy()}))
    return pd.concat(rows, ignore_index=True)


def example(data: SeriesSet, settings: Mapping[str, Any]) -> pd.DataFrame:
    """The first series' last `input_len` values, long: what `predict` needs to forecast
    (dates written the ISO way, integer steps as integers)."""
    series, length = data.series[0], int(settings["input_len"])
    times = series.times[-length:]
    return pd.DataFrame(
        {
            "unique_id": series.uid,
            "ds": times.astype(str) if isinstance(times, pd.DatetimeIndex) else times,
            "y": series.values[-length:],
        }
    )


TASK = Task(
    spec=SPEC,
    add_data_args=add_data_args,
    load_data=read_series,
    fit_space=fit_space,
    build_datamodule=build_datamodule,
    build_model=build_model,
    model_class=ForecastLSTM,
    example=example,
    report_views=report_views,
    predict=predict,
    statistical_baselines=statistical_baselines,
    split_settings=("horizon", "test_size", "season_length"),
    fold_models="recent",  # the newest half of the backtests: trained on the most, freshest data
    ensemble_inputs=("input_len", "horizon", "transform", "scaling"),
    reframe=reframe,  # a member of a shorter window or another transform still fits
    default_data=str(DATA / "air_passengers.csv"),
    smoke={"hidden_size": 8, "input_len": 12, "max_epochs": 2, "batch_size": 16},
)
