"""The default space sized by the data: how many sequences a trial trains on decides its
batch sizes, its epochs and its hidden sizes, and whether each sequence's level tells the
classes apart decides how the first trial scales its inputs. A space (or --set) that names
one wins.

Why: a default of batch 32 and 40 epochs gives a set of 115 training sequences 160
optimizer steps, too few for an LSTM to learn a waveform's shape; scaling by the training
part keeps each waveform's own level and amplitude, which hide its shape, while the
JapaneseVowels speakers are told apart by theirs (benchmarks/JOURNAL.md, 2026-12-06)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tuner.config.space import ParamSpec

BATCHES = (8, 16, 32, 64)
STEPS_PER_EPOCH = 4  # a batch size leaves at least this many optimizer steps per epoch
TRAINING_STEPS = 300  # optimizer steps a trial of the middle batch size gets, at least
EPOCHS = (40, 100)  # fewest and most epochs a data-sized default gives
SMALL = 200  # fewer training sequences than this: a narrower hidden-size range
TELLING = 0.5  # levels tell classes apart: 1-NN on them this far from chance towards 1
SAMPLE = 2000  # sequences the level check reads at most


def sized(space: Any, sequences: list[np.ndarray], labels: list[str]) -> tuple[Any, list[str]]:
    """Batch sizes, max_epochs, the hidden-size range and the first trial's scaling for
    these training sequences, each where the space leaves it out."""
    count = len(sequences)
    batches = tuple(b for b in BATCHES if count >= STEPS_PER_EPOCH * b)[-3:]
    batches = batches or (max(1, count // STEPS_PER_EPOCH),)
    middle = batches[len(batches) // 2]
    batch = int(space.fixed.get("batch_size", middle))  # a batch size the space fixes
    epochs = min(max(-(-TRAINING_STEPS * batch // max(count, 1)), EPOCHS[0]), EPOCHS[1])
    hidden = (16, 128) if count < SMALL else (32, 256)
    seen = f"{count} training sequences"
    notes: list[str] = []
    for name, value, why, first in (
        ("batch_size", ParamSpec("batch_size", "categorical", choices=batches),
         f"{seen}: at least {STEPS_PER_EPOCH} steps an epoch", middle),
        ("max_epochs", epochs, f"{seen} in batches of {batch}: about {TRAINING_STEPS} steps",
         None),
        ("hidden_size", ParamSpec("hidden_size", "int", low=hidden[0], high=hidden[1], log=True),
         seen, 64),
    ):  # fmt: skip
        space, note = space.from_data(name, value, why, first)
        notes += note
    space, note = _first_scaling(space, sequences, labels)
    return space, notes + note


def _first_scaling(
    space: Any, sequences: list[np.ndarray], labels: list[str]
) -> tuple[Any, list[str]]:
    """A searched `scaling` the space's first trial leaves out starts with `features` where
    each sequence's level and spread tell the classes apart, else with `sequence`."""
    spec = space.param("scaling")
    if not space.first or spec is None or "scaling" in space.first or not sequences:
        return space, []
    if sequences[0].dtype.kind not in "f":  # texts: an embedding, no scaling
        return space, []
    score, chance = level_score(sequences, labels)
    telling = score >= chance + TELLING * (1 - chance)
    choice = "features" if telling else "sequence"
    if choice not in spec.choices:
        return space, []
    first = {**space.first, "scaling": choice}
    words = "tell the classes apart" if telling else "do not tell the classes apart"
    return space.replace_first(first), [
        f"from the data: first trial's scaling {choice} (each sequence's level and spread "
        f"{words}: 1-NN on them {score:.2f}, chance {chance:.2f})"
    ]


def level_score(sequences: list[np.ndarray], labels: list[str]) -> tuple[float, float]:
    """(leave-one-out 1-NN accuracy on each sequence's per-feature mean and log std, the
    largest class's share): how much the levels alone say about the class."""
    rng = np.random.default_rng(0)
    chosen = rng.permutation(len(sequences))[:SAMPLE]
    stats = np.array(
        [
            np.concatenate([sequences[i].mean(0), np.log(sequences[i].std(0) + 1e-8)])
            for i in chosen
        ]
    )
    stats = (stats - stats.mean(0)) / (stats.std(0) + 1e-12)
    y = np.asarray(labels)[chosen]
    squares = (stats**2).sum(1)
    distances = squares[:, None] - 2 * stats @ stats.T + squares[None, :]
    np.fill_diagonal(distances, np.inf)
    score = float((y[distances.argmin(1)] == y).mean())
    _, counts = np.unique(y, return_counts=True)
    return score, float(counts.max() / counts.sum())
