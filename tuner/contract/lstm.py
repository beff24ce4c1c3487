"""The pieces every task's model shares: the LSTM it owns, its optimiser, and exact error
sums for epoch metrics."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn


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
        freeze_lstm_layers(self.lstm, count)


def first_lstm(model: nn.Module) -> tuple[str, nn.LSTM] | None:
    """A model's first nn.LSTM and its name in the model (None: it holds none): what
    `--freeze-layers` freezes in a model that is not a task's own."""
    return next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.LSTM)), None)


def freeze_lstm_layers(lstm: nn.LSTM, count: int) -> None:
    """Stop gradients for the first `count` layers (fine-tuning keeps what they learnt)."""
    for name, weight in lstm.named_parameters():
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


def adam(module: pl.LightningModule) -> torch.optim.Optimizer:
    """The optimizer every task uses, from the hparams the search sets (lr, weight_decay)."""
    return torch.optim.Adam(
        module.parameters(),
        lr=module.hparams.lr,
        weight_decay=module.hparams.get("weight_decay", 0.0),
    )
