"""Generated data sets the defaults were not tuned on: seasonal series of every frequency
the forecasting task names (and integer steps), and waveform sets whose classes differ in
shape alone (each sequence has its own period, phase, level and amplitude). Tests and
benchmarks.data_defaults read them."""

from __future__ import annotations

import numpy as np
import pandas as pd

# frequency -> (pandas alias, steps per season, default length)
FREQUENCIES = {
    "hourly": ("h", 24, 24 * 14),
    "daily": ("D", 7, 400),
    "business-daily": ("B", 5, 300),
    "weekly": ("W-SUN", 52, 260),
    "monthly": ("MS", 12, 144),
    "quarterly": ("QS", 4, 80),
    "yearly": ("YS", 1, 60),
    "integer": ("", 1, 200),
}


def seasonal_series(
    frequency: str, n_series: int = 3, length: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """Long (unique_id, ds, y): per series a level, a trend, a season of the frequency's
    length (yearly and integer steps: a slow cycle of 9 steps) and noise."""
    alias, season, default_length = FREQUENCIES[frequency]
    length = length or default_length
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    period = season if season > 1 else 9
    if alias:
        ds: object = pd.date_range("2001-01-01", periods=length, freq=alias).strftime(
            "%Y-%m-%d %H:%M" if alias == "h" else "%Y-%m-%d"
        )
    else:
        ds = 1000 + 5 * t  # integer steps of 5 from 1000
    frames = []
    for i in range(n_series):
        level, trend, amplitude = rng.uniform(50, 150), rng.uniform(-0.05, 0.2), rng.uniform(5, 20)
        phase = rng.uniform(0, 2 * np.pi)
        y = level + trend * t + amplitude * np.sin(2 * np.pi * t / period + phase)
        y += rng.normal(0, amplitude / 5, length)
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y.round(3)}))
    return pd.concat(frames, ignore_index=True)


SHAPES = {
    "sine": lambda p: np.sin(2 * np.pi * p),
    "square": lambda p: np.sign(np.sin(2 * np.pi * p)),
    "sawtooth": lambda p: 2 * (p % 1.0) - 1,
    "reverse_sawtooth": lambda p: 1 - 2 * (p % 1.0),
    "triangle": lambda p: 2 * np.abs(2 * (p % 1.0) - 1) - 1,
    "pulse": lambda p: np.where(p % 1.0 < 0.2, 1.0, -0.25),
    "half_rectified": lambda p: np.maximum(np.sin(2 * np.pi * p), 0.0),
    "staircase": lambda p: np.round(1.5 * np.sin(2 * np.pi * p)) / 1.5,
    "double_peak": lambda p: np.sin(2 * np.pi * p) + 0.8 * np.sin(4 * np.pi * p),
    "spike": lambda p: np.exp(-(((p % 1.0) - 0.5) ** 2) / 0.005),
}


def waveforms(
    classes: int = 3,
    n: int = 120,
    lengths: tuple[int, int] = (40, 90),
    noise_channel: bool = True,
    seed: int = 0,
    shapes: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """Long (sequence_id, step, signal[, noise], label): `n` sequences of `classes` shapes
    (the first of SHAPES unless named), each with its own length, period (6-20 steps),
    phase, level (-2..2), amplitude (0.5..3) and 10% noise."""
    names = shapes or tuple(SHAPES)[:classes]
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        label = names[i % len(names)]
        steps = int(rng.integers(lengths[0], lengths[1] + 1))
        cycles = np.arange(steps) / rng.uniform(6, 20) + rng.uniform()
        amplitude = rng.uniform(0.5, 3)
        signal = amplitude * SHAPES[label](cycles) + rng.uniform(-2, 2)
        columns = {
            "sequence_id": i,
            "step": np.arange(steps),
            "signal": (signal + rng.normal(0, 0.1 * amplitude, steps)).round(4),
        }
        if noise_channel:
            columns["noise"] = rng.normal(0, 1, steps).round(4)
        frames.append(pd.DataFrame({**columns, "label": label}))
    return pd.concat(frames, ignore_index=True)


def shape_statistics(signal: np.ndarray) -> np.ndarray:
    """Six statistics of a sequence's shape, after z-normalising it: what a nearest
    neighbour compares (mean |z|, kurtosis, skew, share beyond 1, mean and largest |step|)."""
    z = (signal - signal.mean()) / max(float(signal.std()), 1e-8)
    steps = np.abs(np.diff(z)) if len(z) > 1 else np.zeros(1)
    return np.array(
        [np.abs(z).mean(), (z**4).mean(), (z**3).mean(), (np.abs(z) > 1).mean(), steps.mean(),
         steps.max()]
    )  # fmt: skip


# ---------------------------------------------------------------- benchmarks/SUITE.md's sets


def hourly_load(n_series: int = 3, days: int = 42, seed: int = 43) -> pd.DataFrame:
    """Electricity-like load: a daily profile (morning and evening peaks), weekends lower,
    a slow drift and noise; hourly."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2021-03-01", periods=24 * days, freq="h")
    hour, weekend = times.hour.to_numpy(), times.dayofweek.to_numpy() >= 5
    frames = []
    for i in range(n_series):
        base, swing = rng.uniform(200, 600), rng.uniform(0.2, 0.5)
        profile = 1 + swing * (
            np.exp(-((hour - 8) ** 2) / 6) + 1.3 * np.exp(-((hour - 19) ** 2) / 8)
        )
        y = base * profile * np.where(weekend, rng.uniform(0.7, 0.85), 1.0)
        y *= 1 + 0.1 * np.sin(2 * np.pi * np.arange(len(times)) / (24 * 30))
        y += rng.normal(0, 0.03 * base, len(times))
        frames.append(pd.DataFrame({"unique_id": f"zone{i}", "ds": times, "y": y.round(2)}))
    return pd.concat(frames, ignore_index=True)


def daily_retail(n_series: int = 4, days: int = 730, seed: int = 44) -> pd.DataFrame:
    """Store sales: weekly seasonality, a trend, holidays (closed days at zero, busy days
    before them) and Poisson noise; daily."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2021-01-01", periods=days, freq="D")
    weekday = times.dayofweek.to_numpy()
    holidays = (times.month == 12) & (times.day == 25) | (times.month == 1) & (times.day == 1)
    busy = np.roll(holidays, -1) | np.roll(holidays, -2)
    frames = []
    for i in range(n_series):
        weekly = 1 + rng.uniform(0.2, 0.6) * np.isin(weekday, [4, 5]) - 0.3 * (weekday == 6)
        mean = rng.uniform(20, 80) * weekly * (1 + rng.uniform(0, 0.5) * np.arange(days) / days)
        mean = np.where(holidays, 0.0, np.where(busy, 1.8 * mean, mean))
        frames.append(pd.DataFrame({"unique_id": f"store{i}", "ds": times,
                                    "y": rng.poisson(mean).astype(float)}))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def business_daily_prices(n_series: int = 3, days: int = 500, seed: int = 45) -> pd.DataFrame:
    """Prices on business days: a random walk with drift and a day-of-week effect."""
    rng = np.random.default_rng(seed)
    times = pd.bdate_range("2022-01-03", periods=days)
    weekday = times.dayofweek.to_numpy()
    frames = []
    for i in range(n_series):
        steps = rng.normal(0.05, 1.0, days) + 0.6 * (weekday == 0) - 0.4 * (weekday == 4)
        y = rng.uniform(50, 150) + np.cumsum(steps)
        frames.append(pd.DataFrame({"unique_id": f"ticker{i}", "ds": times, "y": y.round(2)}))
    return pd.concat(frames, ignore_index=True)


def integer_counter(n_series: int = 3, length: int = 240, seed: int = 46) -> pd.DataFrame:
    """Counts on integer steps (0, 1, 2...) with a period of 9 steps and a trend."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    frames = []
    for i in range(n_series):
        mean = rng.uniform(10, 40) + 0.05 * t + rng.uniform(3, 8) * (1 + np.sin(2 * np.pi * t / 9))
        frames.append(pd.DataFrame({"unique_id": f"c{i}", "ds": t,
                                    "y": rng.poisson(mean).astype(float)}))  # fmt: skip
    return pd.concat(frames, ignore_index=True)
