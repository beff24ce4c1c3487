"""The Task contract and the pieces every task's LightningModule shares.

A task is one module in `tasks/` exposing `TASK = Task(...)`. The framework in
`tuner/` only ever talks to a task through these fields.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from torch import nn
from typing_extensions import override

from tuner.errors import DataError
from tuner.settings import TaskSpec


@dataclass(frozen=True)
class Task:
    """What a task provides to the framework.

    Fields:
        spec: its declaration (name, metric and direction, the metrics it logs, every
            setting with its type, range and default, its predict options); see
            `tuner.settings.TaskSpec`. Tasks written before it give name, metric,
            direction, defaults and choices instead, and a spec is made from those.
        add_data_args: adds the task's data flags (--data, columns...) to a parser.
        load_data: reads and validates the input once per study (dict of the data flags).
        fit_space: adapts a space to the data (e.g. clips window lengths) and refuses data
            that cannot make one trial of it (DataError); returns the space and notes.
        build_datamodule: in-memory tensors for one trial's settings.
        build_model: a LightningModule for one trial's settings and data.
        model_class: rebuilds a model from a checkpoint's hyperparameters.
        predict: model + data options + settings + predict options (`spec.predict_options`)
            -> a table a person can read; the task reads the data itself (it may need none).
        default_data: shipped demo data used when --data is not given.
        smoke: tiny settings for tests.
    """

    add_data_args: Callable[[argparse.ArgumentParser], None]
    load_data: Callable[[Mapping[str, Any]], Any]
    fit_space: Callable[[Any, Any], tuple[Any, list[str]]]
    build_datamodule: Callable[[Any, Mapping[str, Any]], pl.LightningDataModule]
    build_model: Callable[[Mapping[str, Any], pl.LightningDataModule], pl.LightningModule]
    model_class: type[pl.LightningModule]
    predict: Callable[
        [pl.LightningModule, Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]],
        pd.DataFrame,
    ]
    spec: TaskSpec | None = None
    default_data: str | None = None
    smoke: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    metric: str = ""
    direction: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        spec = self.spec or TaskSpec.from_defaults(
            self.name, self.metric, self.direction, self.defaults, self.choices
        )
        for key, value in (
            ("spec", spec),
            ("name", spec.name),
            ("metric", spec.metric),
            ("direction", spec.direction),
            ("defaults", spec.defaults),
            ("choices", spec.choices),
        ):
            object.__setattr__(self, key, value)

    def data_keys(self) -> list[str]:
        """The names of the task's data options (the dests of its data flags)."""
        scratch = argparse.ArgumentParser(add_help=False)
        self.add_data_args(scratch)
        return [action.dest for action in scratch._actions]


class TensorBatches:
    """Batches sliced from in-memory tensors: no DataLoader, no per-item Python work.

    Shuffles with its own seeded generator, so a trial's batch order depends only on
    the seed, not on what ran before it in the process.
    """

    def __init__(
        self,
        tensors: tuple[torch.Tensor, ...],
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        self.tensors = tensors
        self.batch_size = max(1, int(batch_size))
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.tensors[0]) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        count = len(self.tensors[0])
        order = torch.randperm(count, generator=self.generator) if self.shuffle else None
        for start in range(0, count, self.batch_size):
            if order is None:
                yield tuple(t[start : start + self.batch_size] for t in self.tensors)
            else:
                index = order[start : start + self.batch_size]
                yield tuple(t[index] for t in self.tensors)


class TensorData(pl.LightningDataModule):
    """A data module whose splits are tensors in memory (`self.tensors['train' | 'val' |
    'test']`, test optional): shuffled training batches of `batch_size`, evaluation in
    slices of `eval_batch_size`. Subclasses fill `self.tensors` in their __init__."""

    eval_batch_size = 1024

    def __init__(self, settings: Mapping[str, Any], seed: int = 0) -> None:
        super().__init__()
        self.settings, self.seed = dict(settings), seed
        self.tensors: dict[str, tuple[torch.Tensor, ...]] = {}

    def _batches(self, stage: str, shuffle: bool = False) -> TensorBatches:
        size = int(self.settings["batch_size"]) if shuffle else self.eval_batch_size
        return TensorBatches(self.tensors[stage], size, shuffle=shuffle, seed=self.seed)

    @override
    def train_dataloader(self) -> TensorBatches:
        return self._batches("train", shuffle=True)

    @override
    def val_dataloader(self) -> TensorBatches:
        return self._batches("val")

    @override
    def test_dataloader(self) -> TensorBatches | list:
        return self._batches("test") if "test" in self.tensors else []


class LSTMBackbone(nn.Module):
    """The LSTM every task owns (composition, not inheritance)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self.output_size = hidden_size * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return self.lstm(x, state)

    def freeze_layers(self, count: int) -> None:
        """Stop gradients for the first `count` layers (fine-tuning keeps what they learnt)."""
        for name, weight in self.lstm.named_parameters():
            layer = int(name.rsplit("_l", 1)[1].split("_")[0])
            weight.requires_grad_(layer >= count)


class ErrorSums:
    """Running absolute and squared error sums, so MAE / RMSE are exact over an epoch."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.abs_sum = 0.0
        self.sq_sum = 0.0
        self.count = 0

    def add(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        error = (prediction - target).detach().double()
        self.abs_sum += error.abs().sum().item()
        self.sq_sum += error.pow(2).sum().item()
        self.count += error.numel()

    def mae(self) -> float:
        return self.abs_sum / max(self.count, 1)

    def rmse(self) -> float:
        return (self.sq_sum / max(self.count, 1)) ** 0.5


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV with a header and at least one row, or a DataError that says what is wrong."""
    if not path.is_file():
        raise DataError(f"{path}: data file not found; expected a CSV file (--data FILE)")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; expected a CSV with a header row") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot read as CSV ({str(exc).splitlines()[0]})") from None
    if frame.empty:
        raise DataError(
            f"{path}: has a header but no rows; expected one row per time step or sequence step"
        )
    return frame


SPLITS = ("train", "val", "test")


def split_column(path: Path | str, values: Any, lines: bool = False) -> np.ndarray:
    """A split value per row or sequence, each train, val or test; `lines`: the values are
    a CSV column's rows, so the error can name the file line."""
    split = np.asarray(values).astype(str)
    bad = np.flatnonzero(~np.isin(split, SPLITS))
    if len(bad):
        where = f"line {bad[0] + 2}: " if lines else ""
        raise DataError(f"{path}: {where}split {split[bad[0]]!r}; expected train, val or test")
    return split


def worst_split_settings(space: Any, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a space allows that leave the fewest validation and training items:
    the smallest val_fraction and the largest test_fraction it can draw."""
    return {
        **defaults,
        **space.fixed,
        "val_fraction": space.value_range("val_fraction", defaults)[0],
        "test_fraction": space.value_range("test_fraction", defaults)[1],
    }


def require_splits(source: str, split: np.ndarray, items: str) -> None:
    """Data that leave no training or no validation items cannot make one trial."""
    for stage, word in (("train", "training"), ("val", "validation")):
        if not (split == stage).any():
            raise DataError(
                f"{source}: {len(split)} {items} leave no {word} {items}; expected enough "
                f"{items} (per class) for training and validation, or a split column with "
                f"train and val rows"
            )


def adam(module: pl.LightningModule) -> torch.optim.Optimizer:
    """The optimizer every task uses, from the hparams the search sets (lr, weight_decay)."""
    return torch.optim.Adam(
        module.parameters(),
        lr=module.hparams.lr,
        weight_decay=module.hparams.get("weight_decay", 0.0),
    )
