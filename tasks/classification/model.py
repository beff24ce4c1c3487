"""The classification model: an LSTM (optionally reading several steps at once, `patch`)
pooled over each sequence's real steps into class scores."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from typing_extensions import override

from tuner.contract.lstm import LSTMBackbone, adam
from tuner.tasks.classification.data import (
    PAD,
)
from tuner.training.loop import EpochMean


class ClassCounts:
    """Confusion counts over an epoch: exact accuracy and macro F1."""

    def __init__(self, n_classes: int) -> None:
        self.matrix = torch.zeros(n_classes, n_classes, dtype=torch.int64)

    def add(self, predicted: torch.Tensor, target: torch.Tensor) -> None:
        n = self.matrix.shape[0]
        flat = (target.cpu() * n + predicted.cpu()).bincount(minlength=n * n)
        self.matrix += flat.reshape(n, n)

    def accuracy(self) -> float:
        return float(self.matrix.diag().sum() / max(int(self.matrix.sum()), 1))

    def macro_f1(self) -> float:
        tp = self.matrix.diag().double()
        precision = tp / self.matrix.sum(0).clamp_min(1)
        recall = tp / self.matrix.sum(1).clamp_min(1)
        f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
        present = (self.matrix.sum(1) > 0) | (self.matrix.sum(0) > 0)
        return float(f1[present].mean()) if present.any() else 0.0


def patched(
    inputs: torch.Tensor, lengths: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """k consecutive steps read as one: (batch, steps, width) -> (batch, ceil(steps / k),
    k * width), with the steps past each sequence's end zeroed first (a sequence's last
    patch holds zeros where it has no steps)."""
    batch, steps, width = inputs.shape
    inputs = nn.functional.pad(inputs * real_steps(inputs, lengths), (0, 0, 0, (-steps) % k))
    return inputs.reshape(batch, -1, k * width), (lengths + k - 1) // k


def real_steps(inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(batch, steps, 1): 1 at each sequence's real steps, 0 at its padding."""
    steps = torch.arange(inputs.shape[1], device=inputs.device)[None, :]
    return (steps < lengths.to(inputs.device)[:, None]).unsqueeze(-1).to(inputs.dtype)


def sequence_scaled(
    inputs: torch.Tensor, inside: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each sequence's features on its own mean and std over its real steps (`inside`;
    padding stays zero), with those means and stds (batch, 1, features): what tells a sine
    from a square wave is the shape, not its level or amplitude."""
    count = inside.sum(1, keepdim=True)
    mean = (inputs * inside).sum(1, keepdim=True) / count
    std = (((inputs - mean) * inside) ** 2).sum(1, keepdim=True).div(count).sqrt()
    std = torch.where(std < 1e-8, torch.ones_like(std), std)
    return (inputs - mean) / std * inside, mean, std


class SequenceClassifier(pl.LightningModule):
    """Embedding (texts) or scaled features -> LSTM over packed sequences -> pooling -> head."""

    def __init__(
        self,
        n_features: int,
        classes: list[str],
        hidden_size: int,
        num_layers: int,
        dropout: float,
        lr: float,
        weight_decay: float = 0.0,
        bidirectional: bool = False,
        pooling: str = "last",
        embed_size: int = 32,
        vocabulary: str = "",
        feature_mean: list[float] | None = None,
        feature_std: list[float] | None = None,
        class_weights: list[float] | None = None,
        patch: int = 1,
        scaling: str = "features",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        width = n_features
        if vocabulary:
            self.embedding = nn.Embedding(len(vocabulary) + 2, embed_size, padding_idx=PAD)
            width = embed_size
        self.register_buffer("mean", torch.tensor(feature_mean or [0.0] * n_features))
        self.register_buffer("std", torch.tensor(feature_std or [1.0] * n_features))
        width *= max(1, patch) * (3 if scaling == "both" and not vocabulary else 1)
        self.backbone = LSTMBackbone(width, hidden_size, num_layers, dropout, bidirectional)
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(self.backbone.output_size, len(classes))
        )
        weights = torch.tensor(class_weights) if class_weights else None
        self.loss = nn.CrossEntropyLoss(weight=weights)
        self.counts = ClassCounts(len(classes))
        self.eval_loss = EpochMean()

    @override
    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        inputs = self.embedding(x) if self.hparams.vocabulary else self.scaled(x, lengths)
        if self.hparams.get("patch", 1) > 1:
            inputs, lengths = patched(inputs, lengths, self.hparams.patch)
        packed = pack_padded_sequence(
            inputs, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        output, (h, _) = self.backbone(packed)
        if self.hparams.pooling == "mean":
            padded, _ = pad_packed_sequence(output, batch_first=True)
            pooled = padded.sum(1) / lengths.to(padded.device).unsqueeze(1)
        elif self.hparams.bidirectional:
            pooled = torch.cat([h[-2], h[-1]], dim=1)
        else:
            pooled = h[-1]
        return self.head(pooled)

    def scaled(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Features by the training part's statistics, by each sequence's own (its shape),
        or both: the shape plus the sequence's level and spread against the training part."""
        scaling = self.hparams.get("scaling", "features")
        if scaling == "features":
            return (x - self.mean) / self.std
        inside = real_steps(x, lengths)
        shape, mean, std = sequence_scaled(x, inside)
        if scaling == "sequence":
            return shape
        level = ((mean - self.mean) / self.std).expand_as(x)
        spread = torch.log(std / self.std).clamp(-10, 10).expand_as(x)
        return torch.cat([shape, level * inside, spread * inside], dim=-1)

    def _step(self, batch: tuple[torch.Tensor, ...], stage: str) -> torch.Tensor:
        x, lengths, y = batch
        logits = self(x, lengths)
        loss = self.loss(logits, y)
        if stage != "train":
            self.eval_loss.add(loss, len(y))
            self.counts.add(logits.argmax(1), y)
        return loss

    @override
    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    @override
    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._step(batch, "val")

    @override
    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._step(batch, "test")

    def _log_counts(self, stage: str) -> None:
        self.log_dict(
            {
                f"{stage}_loss": self.eval_loss.pop(),
                f"{stage}_acc": self.counts.accuracy(),
                f"{stage}_f1": self.counts.macro_f1(),
            }
        )
        self.counts = ClassCounts(len(self.hparams.classes))

    @override
    def on_validation_epoch_end(self) -> None:
        self._log_counts("val")

    @override
    def on_test_epoch_end(self) -> None:
        self._log_counts("test")

    @override
    def configure_optimizers(self) -> torch.optim.Optimizer:
        return adam(self)


def average_probabilities(outputs: list[torch.Tensor]) -> torch.Tensor:
    """Several classifiers as one: the log of their mean class probabilities (a softmax of
    it gives the mean probabilities back; the loss on it is the mixture's)."""
    return torch.stack([o.softmax(-1) for o in outputs]).mean(0).log()
