"""What the classification task declares without importing torch: settings, metrics."""

from __future__ import annotations

from tuner.config.settings import MAXIMIZE, MINIMIZE, Setting, TaskSpec, lstm_settings
from tuner.training.folds import folds_setting

CV_FOLDS = 5  # stratified folds `folds: 0` gives a data set with a small validation part
# `patch: 0` reads the longest sequence in at most this many LSTM steps: on the UCR sets of
# 150-427 steps, an LSTM reading every step stayed at chance; at 64, waveforms of 80 steps
# read in pairs lost 0.1-0.5 of their accuracy (benchmarks/JOURNAL.md, 2026-12-06)
PATCH_STEPS = 100

SPEC = TaskSpec(
    name="classification",
    metric="val_acc",
    direction=MAXIMIZE,
    metrics={"val_acc": MAXIMIZE, "val_f1": MAXIMIZE, "val_loss": MINIMIZE},
    settings=(
        *lstm_settings(hidden_size=64, num_layers=1, dropout=0.0, lr=3e-3),
        Setting("batch_size", 32, "training sequences per batch", low=1),
        Setting("bidirectional", False, "read each sequence both ways", model=True),
        Setting(
            "pooling",
            "last",
            "last state or mean over the real steps",
            choices=("last", "mean"),
            model=True,
        ),
        Setting(
            "scaling",
            "features",
            "features: each feature by the training part's mean and std; sequence: each "
            "sequence by its own (its shape alone); both: the shape plus each sequence's "
            "level and spread as inputs",
            choices=("features", "sequence", "both"),
            model=True,
        ),
        Setting("embed_size", 32, "character embedding width (text input)", low=1, model=True),
        Setting(
            "class_weights",
            "auto",
            "weight classes when training labels are imbalanced",
            choices=("auto", "none"),
        ),
        Setting(
            "val_fraction",
            0.15,
            "share of each class for validation (no split column)",
            low=0,
            above=True,
            high=0.9,
        ),
        Setting(
            "test_fraction", 0.2, "share of each class for test (no split column)", low=0, high=0.9
        ),
        folds_setting(CV_FOLDS),
        Setting(
            "patch",
            0,
            f"steps read as one LSTM step (0 = auto: sequences of at most {PATCH_STEPS} steps)",
            low=0,
            model=True,
        ),
    ),
    framework={"max_epochs": 30, "grad_clip": 1.0},
    predict_options=(Setting("proba", False, "one p_<class> column per class"),),
)
