"""What a forecast must beat, on the same steps as the model: naive (the last known value),
seasonal naive (the same season's last known value) and, once per study, an automatic
exponential-smoothing model (statsmodels' Holt-Winters, the form with the lowest AICc per
series).

Why statsmodels' ETS: it fits a 144-month series in tens of milliseconds, imports in about a
second and compiles nothing; statsforecast's AutoETS / AutoARIMA compile with numba on a
fresh process's first call (tens of seconds, every study), and pmdarima's auto_arima fits
dozens of models per series.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from tuner.tasks.forecasting.data import SeriesSet, spans, split_points

# seasonal ETS needs two full seasons to start; shorter histories get the trend forms only
SEASONS_FOR_SEASONAL = 2


def seasonal_naive(values: np.ndarray, span: tuple[int, int], season: int) -> np.ndarray:
    """Each step of `span` predicted by the same season's last value known before `span`."""
    start, end = span
    return np.asarray(
        [values[t - season * (1 + (t - start) // season)] for t in range(start, end)]
    )


def naive(values: np.ndarray, span: tuple[int, int]) -> np.ndarray:
    """Each step of `span` predicted by the last value known before it."""
    start, end = span
    return np.full(end - start, values[start - 1])


def baseline_metrics(
    data: SeriesSet, settings: Mapping[str, Any], fold: int | None = 0
) -> dict[str, float]:
    """Naive and seasonal-naive MAE / RMSE on the same val and test parts as the model."""
    season = _season(data, settings)
    metrics = {}
    for stage in ("val", "test"):
        errors: dict[str, list[np.ndarray]] = {"snaive": [], "naive": []}
        for series in data.series:
            values = series.values
            span = spans(split_points(len(values), settings, fold), len(values))[stage]
            actual = values[span[0] : span[1]]
            errors["snaive"].append(seasonal_naive(values, span, season) - actual)
            errors["naive"].append(naive(values, span) - actual)
        metrics.update(_scores(stage, errors))
    return metrics


def statistical_baselines(data: SeriesSet, settings: Mapping[str, Any]) -> dict[str, float]:
    """Automatic ETS on the test part: each series' best form by AICc, fitted on
    everything before the test part (computed once per study: tuner.study.baselines)."""
    season = _season(data, settings)
    errors: dict[str, list[np.ndarray]] = {"ets": []}
    for series in data.series:
        values = series.values
        start, end = spans(split_points(len(values), settings), len(values))["test"]
        errors["ets"].append(ets_forecast(values[:start], end - start, season) - values[start:end])
    return _scores("test", errors)


def ets_forecast(history: np.ndarray, steps: int, season: int) -> np.ndarray:
    """The next `steps` values of the exponential-smoothing form with the lowest AICc:
    level alone or a damped additive trend, each with an additive season where the history
    holds two of them."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal = season > 1 and len(history) >= SEASONS_FOR_SEASONAL * season
    forms = [(trend, seasons) for trend in (None, "add") for seasons in (None, "add")
             if seasons is None or seasonal]  # fmt: skip
    best, best_aicc = None, np.inf
    with warnings.catch_warnings():  # convergence and start-value warnings: the AICc judges
        warnings.simplefilter("ignore")
        for trend, seasons in forms:
            fitted = ExponentialSmoothing(
                history.astype(float),
                trend=trend,
                damped_trend=trend is not None,
                seasonal=seasons,
                seasonal_periods=season if seasons else None,
                initialization_method="estimated",
            ).fit()
            if np.isfinite(fitted.aicc) and fitted.aicc < best_aicc:
                best, best_aicc = fitted, fitted.aicc
    if best is None:  # every form failed to fit: the last value, as naive
        return np.full(steps, history[-1], dtype=float)
    return np.asarray(best.forecast(steps), dtype=float)


def _season(data: SeriesSet, settings: Mapping[str, Any]) -> int:
    return int(settings["season_length"]) or data.season_length()


def _scores(stage: str, errors: Mapping[str, list[np.ndarray]]) -> dict[str, float]:
    metrics = {}
    for name, parts in errors.items():
        joined = np.concatenate(parts) if parts else np.array([])
        if len(joined):
            metrics[f"{stage}_{name}_mae"] = float(np.abs(joined).mean())
            metrics[f"{stage}_{name}_rmse"] = float(np.sqrt((joined**2).mean()))
    return metrics
