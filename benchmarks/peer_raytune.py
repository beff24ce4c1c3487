"""Ray Tune with ASHA over the same LSTM and space as lstm-tuner's default forecasting
sweep: airline series, 1960 test, 1959 validation (one hold-out: Ray has no backtests),
horizon 12, 10 trials, CPU, run the way Ray's Lightning guide shows it: a function
trainable, `TuneReportCheckpointCallback` (a report and a checkpoint every validation),
the ASHA scheduler over epochs, random search, and `MLflowLoggerCallback` recording into
a SQLite MLflow store. The model and data are lstm-tuner's (tuner.tasks.forecasting), so
the two
sweeps differ only in the tuning around them. Needs ray[tune] (its own venv: make bench).

Prints one JSON line: test MAE / RMSE of the best trial's last checkpoint, trials stopped
early, epochs trained, and what the MLflow record holds.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

TRIALS = 10


def tune_space(space: Any) -> dict[str, Any]:
    """lstm-tuner's SearchSpace params as Ray Tune distributions (Ray's randint excludes
    its upper bound; qrandint includes it)."""
    from ray import tune

    out: dict[str, Any] = {}
    for spec in space.params:
        if spec.kind == "categorical":
            out[spec.name] = tune.choice(list(spec.choices))
        elif spec.kind == "int" and spec.log:
            out[spec.name] = tune.lograndint(int(spec.low), int(spec.high) + 1)
        elif spec.kind == "int":
            out[spec.name] = tune.qrandint(int(spec.low), int(spec.high), int(spec.step or 1))
        elif spec.log:
            out[spec.name] = tune.loguniform(spec.low, spec.high)
        else:
            out[spec.name] = tune.uniform(spec.low, spec.high)
    return out


def main(seed: int, data_path: str) -> dict[str, Any]:
    import lightning.pytorch as pl
    import ray
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback
    from ray.tune.integration.pytorch_lightning import TuneReportCheckpointCallback
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from tuner.config.space_file import load_space
    from tuner.contract.registry import get_task

    warnings.filterwarnings("ignore")
    task = get_task("forecasting")
    data = task.load_data({"data": data_path})
    repo = Path(__file__).resolve().parents[1]
    space = load_space(repo / "search_spaces" / "forecasting.yaml", task.spec)
    space, _ = task.fit_space(space.with_fixed({"folds": 1}), data)
    fixed = {**task.defaults, **space.fixed, "fold": 0, "seed": seed}
    max_epochs = int(fixed["max_epochs"])

    def trainable(config: dict[str, Any]) -> None:
        logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
        settings = {**fixed, **config}
        pl.seed_everything(seed, verbose=False)
        datamodule = task.build_datamodule(data, settings)
        model = task.build_model(settings, datamodule)
        trainer = pl.Trainer(
            max_epochs=max_epochs,
            accelerator="cpu",
            gradient_clip_val=float(settings["grad_clip"]),
            callbacks=[TuneReportCheckpointCallback({"val_mae": "val_mae"})],
            enable_progress_bar=False,
            enable_model_summary=False,
            logger=False,
            enable_checkpointing=False,
        )
        trainer.fit(model, datamodule=datamodule)

    records = tempfile.mkdtemp(prefix="raytune-")
    tracking_uri = f"sqlite:///{records}/mlflow.db"
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.ERROR)
    tuner = tune.Tuner(
        trainable,
        param_space=tune_space(space),
        tune_config=tune.TuneConfig(
            metric="val_mae",
            mode="min",
            num_samples=TRIALS,
            scheduler=ASHAScheduler(max_t=max_epochs),
            search_alg=BasicVariantGenerator(random_state=seed),
        ),
        run_config=tune.RunConfig(
            storage_path=records,
            callbacks=[MLflowLoggerCallback(tracking_uri, experiment_name="raytune-air")],
            verbose=0,
        ),
    )
    results = tuner.fit()
    best = results.get_best_result(metric="val_mae", mode="min", scope="all")
    test = test_metrics(task, data, {**fixed, **best.config}, best)
    epochs = [int(r.metrics["training_iteration"]) for r in results]
    ray.shutdown()
    return {
        **test,
        "val_mae": float(best.metrics["val_mae"]),
        "pruned": sum(e < max_epochs for e in epochs),
        "epochs": sum(epochs),
        "mlflow": describe_record(tracking_uri),
    }


def test_metrics(task: Any, data: Any, settings: dict[str, Any], best: Any) -> dict[str, float]:
    """The best trial's checkpoint nearest its best validation (what Ray keeps), tested on
    1960 by the task's own test step."""
    import lightning.pytorch as pl

    checkpoint, _ = min(best.best_checkpoints, key=lambda pair: pair[1]["val_mae"])
    with checkpoint.as_directory() as folder:
        model = task.model_class.load_from_checkpoint(Path(folder) / "checkpoint")
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    scores = trainer.test(model, datamodule=task.build_datamodule(data, settings), verbose=False)
    return {"test_mae": scores[0]["test_mae"], "test_rmse": scores[0]["test_rmse"]}


def describe_record(tracking_uri: str) -> dict[str, Any]:
    """What a person finds in MLflow afterwards: runs, and what one run holds."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("raytune-air")
    runs = client.search_runs([experiment.experiment_id])
    one = runs[0]
    return {
        "runs": len(runs),
        "nested": any("mlflow.parentRunId" in r.data.tags for r in runs),
        "params": sorted(one.data.params),
        "metrics": len(one.data.metrics),
        "artifacts": len(client.list_artifacts(one.info.run_id)),
        "registered_models": len(client.search_registered_models()),
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), sys.argv[2])))
