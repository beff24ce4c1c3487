"""What the forecasting task declares without importing torch: settings, metrics."""

from __future__ import annotations

from tuner.settings import MINIMIZE, Setting, TaskSpec

SPEC = TaskSpec(
    name="forecasting",
    metric="val_mae",
    direction=MINIMIZE,
    metrics={"val_mae": MINIMIZE, "val_rmse": MINIMIZE, "val_loss": MINIMIZE},
    settings=(
        Setting("hidden_size", 64, "LSTM units per layer", low=1, model=True),
        Setting("num_layers", 1, "stacked LSTM layers", low=1, model=True),
        Setting(
            "dropout", 0.0, "dropout between layers and before the head", low=0, high=1, model=True
        ),
        Setting("lr", 3e-3, "Adam learning rate", low=0, above=True, model=True),
        Setting("weight_decay", 0.0, "Adam weight decay", low=0, model=True),
        Setting("batch_size", 32, "training windows per batch", low=1),
        Setting("input_len", 24, "window length in", low=1, model=True),
        Setting("horizon", 12, "steps forecast out", low=1, model=True),
        Setting("val_size", 0, "validation steps per series (0 = horizon)", low=0),
        Setting("test_size", 0, "test steps per series (0 = horizon)", low=0),
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
