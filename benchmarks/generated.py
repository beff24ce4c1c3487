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
