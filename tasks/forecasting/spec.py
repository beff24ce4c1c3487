"""What the forecasting task declares without importing torch: settings, metrics."""

from __future__ import annotations

from tuner.config.settings import MINIMIZE, Setting, TaskSpec, lstm_settings
from tuner.training.folds import folds_setting

BACKTESTS = 4  # backtest windows `folds: 0` gives series validated on a handful of windows

SPEC = TaskSpec(
    name="forecasting",
    metric="val_mae",
    direction=MINIMIZE,
    metrics={"val_mae": MINIMIZE, "val_rmse": MINIMIZE, "val_loss": MINIMIZE},
    settings=(
        *lstm_settings(hidden_size=64, num_layers=1, dropout=0.0, lr=3e-3),
        Setting("batch_size", 32, "training windows per batch", low=1),
        Setting(
            "input_len",
            24,
            "window length in (left out of a space: searched over 2-6 horizons)",
            low=1,
            model=True,
        ),
        Setting(
            "horizon",
            12,
            "steps forecast out (left out of a space: one season of the data's frequency)",
            low=1,
            model=True,
        ),
        Setting("val_size", 0, "validation steps per series (0 = horizon)", low=0),
        Setting("test_size", 0, "test steps per series (0 = horizon)", low=0),
        folds_setting(BACKTESTS),
        Setting("step", 0, "backtest cutoffs step back by this many steps (0 = horizon)", low=0),
        Setting(
            "scaling",
            "window",
            "per input window or per series (training part)",
            choices=("window", "global"),
            model=True,
        ),
        Setting(
            "transform",
            "none",
            "log: sign(y) log(1 + |y|) before scaling",
            choices=("none", "log"),
            model=True,
        ),
        Setting(
            "loss",
            "mse",
            "training loss on the scaled values",
            choices=("mse", "mae", "huber"),
            model=True,
        ),
        Setting(
            "head",
            "last",
            "last state -> all steps, or each step one horizon back",
            choices=("last", "aligned"),
            model=True,
        ),
        Setting("season_length", 0, "seasonal-naive period (0 = from the frequency)", low=0),
    ),
    framework={"max_epochs": 50, "grad_clip": 1.0},
)
