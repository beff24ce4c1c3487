"""What the character language model declares without importing torch."""

from __future__ import annotations

from tuner.config.settings import MINIMIZE, Setting, TaskSpec, lstm_settings

SPEC = TaskSpec(
    name="charlm",
    metric="val_bpc",
    direction=MINIMIZE,
    metrics={"val_bpc": MINIMIZE, "val_loss": MINIMIZE},
    settings=(
        *lstm_settings(hidden_size=256, num_layers=2, dropout=0.1, lr=2e-3),
        Setting("embed_size", 64, "character embedding width", low=1, model=True),
        Setting("batch_size", 32, "parallel streams of the text", low=1),
        Setting("bptt", 100, "characters per truncated back-propagation step", low=1),
        Setting(
            "val_fraction",
            0.1,
            "last share of the text for validation",
            low=0,
            above=True,
            high=0.9,
        ),
        Setting("max_chars", 0, "train on the first N characters only (0 = all)", low=0),
        Setting("batches_per_epoch", 200, "batches an epoch holds (0 = a whole pass)", low=0),
        Setting(
            "vocabulary",
            "",
            "characters the model reads and emits, in order (empty: those of the training "
            "text; a fine-tune keeps its source's)",
        ),
    ),
    framework={"max_epochs": 10, "grad_clip": 1.0},
    predict_options=(
        Setting("prompt", None, "text to continue (default: a new line)", kind=str, optional=True),
        Setting("length", 300, "characters to generate", low=1, high=100_000),
        Setting("temperature", 1.0, "sampling temperature", low=0, above=True),
        Setting("seed", 0, "sampling seed", low=0, high=2**32 - 1),
    ),
)
