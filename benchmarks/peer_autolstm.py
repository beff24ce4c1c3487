"""NeuralForecast's AutoLSTM (Optuna backend) on the airline series: 1960 held out as test,
1959 as validation, horizon 12, 10 trials, run the way its own error message tells a user
to (start_padding_enabled=True: its default input sizes do not fit this series),
max_steps=100. Needs the `bench` extra (neuralforecast) in the interpreter that runs it.

Prints one JSON line: {"test_mae": ..., "test_rmse": ...}.
"""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import optuna
import pandas as pd


def main(seed: int, data: str) -> dict[str, float]:
    from neuralforecast import NeuralForecast
    from neuralforecast.auto import AutoLSTM

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    raw = pd.read_csv(data)
    frame = pd.DataFrame(
        {
            "unique_id": "air",
            "ds": pd.to_datetime(raw.iloc[:, 0]),
            "y": raw.iloc[:, 1].astype(float),
        }
    )
    train, test = frame.iloc[:-12], frame.iloc[-12:]
    default = AutoLSTM.get_default_config(h=12, backend="optuna")

    def config(trial: optuna.Trial) -> dict:
        return {
            **default(trial),
            "start_padding_enabled": True,
            "max_steps": 100,
            "random_seed": seed,
        }

    model = AutoLSTM(
        h=12,
        config=config,
        backend="optuna",
        num_samples=10,
        search_alg=optuna.samplers.TPESampler(seed=seed),
    )
    forecaster = NeuralForecast(models=[model], freq="MS")
    forecaster.fit(train, val_size=12)
    predicted = forecaster.predict()["AutoLSTM"].to_numpy()
    error = predicted - test["y"].to_numpy()
    return {
        "test_mae": float(np.abs(error).mean()),
        "test_rmse": float(np.sqrt((error**2).mean())),
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), sys.argv[2])))
