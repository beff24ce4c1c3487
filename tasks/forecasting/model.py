"""The forecasting model: an LSTM over a normalised window and a head that reads the horizon
from its last state or from each step's state one horizon back."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from typing_extensions import override

from tuner.contract.lstm import ErrorSums, LSTMBackbone, adam
from tuner.tasks.forecasting.frames import to_original_units
from tuner.training.loop import EpochMean

LOSSES = {  # on the normalised scale; mae trains for the median, as val_mae scores
    "mse": nn.functional.mse_loss,
    "mae": nn.functional.l1_loss,
    "huber": nn.functional.smooth_l1_loss,
}


class AlignedHead(nn.Module):
    """Reads step k of the forecast from the hidden state `horizon` steps before it, through
    one small MLP shared by all steps (NeuralForecast's LSTM decoder). On seasonal data with
    horizon = season, each step sees the same season a cycle earlier."""

    def __init__(self, input_len: int, horizon: int, hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.horizon = horizon
        # windows shorter than the horizon are stretched to it along time, as NeuralForecast does
        self.stretch = nn.Linear(input_len, horizon) if horizon > input_len else None
        self.mlp = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, 1),
        )

    def forward(self, output: torch.Tensor) -> torch.Tensor:
        """LSTM output (batch, input_len, hidden) -> forecast (batch, horizon)."""
        if self.stretch is not None:
            output = self.stretch(output.transpose(1, 2)).transpose(1, 2)
        return self.mlp(output[:, -self.horizon :]).squeeze(-1)


class LastStateHead(nn.Sequential):
    """Every step from the last hidden state, by one linear layer (the original head: its
    weights keep their checkpoint keys, head.1.*)."""

    def __init__(self, horizon: int, hidden_size: int, dropout: float) -> None:
        super().__init__(nn.Dropout(dropout), nn.Linear(hidden_size, horizon))

    def forward(self, output: torch.Tensor) -> torch.Tensor:
        """LSTM output (batch, input_len, hidden) -> forecast (batch, horizon)."""
        return super().forward(output[:, -1])


class ForecastLSTM(pl.LightningModule):
    """LSTM encoder over the normalised input window, then a head to all horizon steps."""

    def __init__(
        self,
        input_len: int,
        horizon: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        lr: float,
        weight_decay: float = 0.0,
        transform: str = "none",
        scaling: str = "window",
        loss: str = "mse",
        head: str = "last",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.backbone = LSTMBackbone(1, hidden_size, num_layers, dropout)
        self.head = (
            AlignedHead(input_len, horizon, hidden_size, dropout)
            if head == "aligned"
            else LastStateHead(horizon, hidden_size, dropout)
        )
        self.errors = ErrorSums()
        self.eval_loss = EpochMean()

    @override
    def forward(self, x: torch.Tensor, loc: Any = None, scale: Any = None) -> torch.Tensor:
        """Normalised window (batch, input_len) -> normalised forecast (batch, horizon).
        The window's loc and scale are for the members an ensemble reads in this model's
        frame (tuner.tasks.forecasting.frames); the model itself needs only the window."""
        output, _ = self.backbone(x.unsqueeze(-1))
        return self.head(output)

    def _step(self, batch: tuple[torch.Tensor, ...], stage: str) -> torch.Tensor:
        x, y, loc, scale, y_raw = batch
        prediction = self(x, loc, scale)
        loss = LOSSES[self.hparams.loss](prediction, y)
        if stage != "train":
            self.eval_loss.add(loss, len(x))
            self.errors.add(
                to_original_units(prediction, loc, scale, self.hparams.transform), y_raw
            )
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

    def _log_errors(self, stage: str) -> None:
        self.log_dict({f"{stage}_loss": self.eval_loss.pop(), f"{stage}_mae": self.errors.mae(),
                       f"{stage}_rmse": self.errors.rmse()})  # fmt: skip
        self.errors.reset()

    @override
    def on_validation_epoch_end(self) -> None:
        self._log_errors("val")

    @override
    def on_test_epoch_end(self) -> None:
        self._log_errors("test")

    @override
    def configure_optimizers(self) -> torch.optim.Optimizer:
        return adam(self)
