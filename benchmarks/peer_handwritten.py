"""The hand-written Optuna + Lightning sweep many tutorials show: TPE, no pruning, a
DataLoader, Lightning defaults, one StandardScaler fitted on the training part. Airline
series, 1960 test, 1959 validation, horizon 12, 10 trials.

Prints one JSON line: {"test_mae": ..., "test_rmse": ...}.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings

import lightning.pytorch as pl
import numpy as np
import optuna
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

H = 12


def windows(values: np.ndarray, n_in: int, first: int, last: int):
    xs = [values[t - n_in : t] for t in range(max(first, n_in), last - H + 1)]
    ys = [values[t : t + H] for t in range(max(first, n_in), last - H + 1)]
    return torch.tensor(np.array(xs), dtype=torch.float32), torch.tensor(
        np.array(ys), dtype=torch.float32
    )


class Net(pl.LightningModule):
    def __init__(self, hidden: int, layers: int, dropout: float, lr: float) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.lstm = nn.LSTM(
            1, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.head = nn.Linear(hidden, H)

    def forward(self, x):
        out, _ = self.lstm(x.unsqueeze(-1))
        return self.head(out[:, -1])

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def main(seed: int, data: str) -> dict[str, float]:
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    values = pd.read_csv(data).iloc[:, 1].to_numpy(dtype=np.float64)
    n = len(values)
    mean, std = values[: n - 2 * H].mean(), values[: n - 2 * H].std()
    scaled = (values - mean) / std
    results = {}

    def objective(trial: optuna.Trial) -> float:
        pl.seed_everything(seed, verbose=False)
        n_in = trial.suggest_int("input_len", 12, 36, step=12)
        model = Net(
            trial.suggest_int("hidden", 16, 256, log=True),
            trial.suggest_int("layers", 1, 3),
            trial.suggest_float("dropout", 0, 0.5),
            trial.suggest_float("lr", 1e-4, 3e-2, log=True),
        )
        train = DataLoader(
            TensorDataset(*windows(scaled, n_in, 0, n - 2 * H)), batch_size=16, shuffle=True
        )
        val = DataLoader(TensorDataset(*windows(scaled, n_in, n - 2 * H, n - H)), batch_size=16)
        trainer = pl.Trainer(max_epochs=60, accelerator="cpu", enable_progress_bar=False)
        trainer.fit(model, train, val)
        x_test, _ = windows(scaled, n_in, n - H, n)
        with torch.no_grad():
            results[trial.number] = model(x_test)[0].numpy() * std + mean
        return float(trainer.callback_metrics["val_loss"])

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=10)
    error = results[study.best_trial.number] - values[n - H :]
    return {
        "test_mae": float(np.abs(error).mean()),
        "test_rmse": float(np.sqrt((error**2).mean())),
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), sys.argv[2])))
