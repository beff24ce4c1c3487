"""Small data sets as tensors in memory: batches sliced from them with no DataLoader and no
per-item Python work, and the LightningDataModule every in-memory task shares."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from typing_extensions import override


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
        order = None
        if self.shuffle:
            order = torch.randperm(count, generator=self.generator).to(self.tensors[0].device)
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

    def place_training_split(self, device: torch.device) -> None:
        """The training split moves to the trial's device once: a host-to-device copy per
        batch costs about as much as a small LSTM's step on a GPU. (Evaluation splits stay
        where they are: a few large batches, and the baselines read them.)"""
        if "train" in self.tensors:
            self.tensors["train"] = tuple(t.to(device) for t in self.tensors["train"])

    def _batches(self, stage: str, shuffle: bool = False) -> TensorBatches:
        size = int(self.settings["batch_size"]) if shuffle else self.eval_batch_size
        order = self.settings.get("train_seed")  # a fresh fit's; the splits keep `seed`
        seed = self.seed if order is None else int(order)
        return TensorBatches(self.tensors[stage], size, shuffle=shuffle, seed=seed)

    @override
    def train_dataloader(self) -> TensorBatches:
        return self._batches("train", shuffle=True)

    @override
    def val_dataloader(self) -> TensorBatches | list:
        return self._batches("val") if "val" in self.tensors else []  # fold None has none

    @override
    def test_dataloader(self) -> TensorBatches | list:
        return self._batches("test") if "test" in self.tensors else []
