"""The default space sized by the data: how many sequences a trial trains on decides its
batch sizes, its epochs and its hidden sizes. A space (or --set) that names one wins.

Why: a default of batch 32 and 40 epochs gives a set of 115 training sequences 160
optimizer steps, too few for an LSTM to learn a waveform's shape (benchmarks/RESULTS.md:
defaults from the data)."""

from __future__ import annotations

from typing import Any

from tuner.config.space import ParamSpec

BATCHES = (8, 16, 32, 64)
STEPS_PER_EPOCH = 4  # a batch size leaves at least this many optimizer steps per epoch
TRAINING_STEPS = 500  # optimizer steps a trial of the middle batch size gets, at least
EPOCHS = (40, 100)  # fewest and most epochs a data-sized default gives
SMALL = 200  # fewer training sequences than this: a narrower hidden-size range


def sized(space: Any, train_count: int) -> tuple[Any, list[str]]:
    """Batch sizes, max_epochs and the hidden-size range for `train_count` training
    sequences, each where the space leaves it out."""
    batches = tuple(b for b in BATCHES if train_count >= STEPS_PER_EPOCH * b)[-3:]
    batches = batches or (max(1, train_count // STEPS_PER_EPOCH),)
    middle = batches[len(batches) // 2]
    epochs = -(-TRAINING_STEPS * middle // max(train_count, 1))
    epochs = min(max(epochs, EPOCHS[0]), EPOCHS[1])
    hidden = (16, 128) if train_count < SMALL else (32, 256)
    seen = f"{train_count} training sequences"
    notes: list[str] = []
    for name, value, why, first in (
        (
            "batch_size",
            ParamSpec("batch_size", "categorical", choices=batches),
            f"{seen}: at least {STEPS_PER_EPOCH} steps an epoch",
            middle,
        ),
        (
            "max_epochs",
            epochs,
            f"{seen} in batches of {middle}: about {TRAINING_STEPS} steps",
            None,
        ),
        (
            "hidden_size",
            ParamSpec("hidden_size", "int", low=hidden[0], high=hidden[1], log=True),
            f"{seen}",
            64,
        ),
    ):
        space, note = space.from_data(name, value, why, first)
        notes += note
    return space, notes
