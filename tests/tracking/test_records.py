"""Records written by an older lstm-tuner (tests/data/records-12719ff: the main of
2026-12-06, before tuner/ moved into subpackages) still read, load, predict and resume:
its Optuna studies, MLflow runs, logged MLflow Models (their MLmodel names the loader
module of that day), a fine-tune and two ensembles."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from tests.conftest import REPO
from tuner.config.trial_attrs import of as attrs_of
from tuner.storage.studies import load_study
from tuner.study._summary import summarize

RECORDS = REPO / "tests" / "data" / "records-12719ff" / "mlruns"
WRITTEN_AT = "/tmp/rec/mlruns"  # the folder the stores name (tests/data/records-12719ff)
DATA = ["--data", str(REPO / "tasks" / "data" / "air_passengers.csv")]
MODELS = ("air", "air-finetuned", "air-ensemble", "air-seeds-ensemble")
SPACE = """
metric: val_mae
direction: minimize
params:
  hidden_size: {type: int, low: 4, high: 16, log: true}
  lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
fixed:
  input_len: 12
  horizon: 6
  max_epochs: 2
  batch_size: 32
  folds: 1
  keep_top: 5
"""


def moved_records(workdir: Path) -> Path:
    """The records copied into `workdir`, their stores' paths pointed there."""
    home = workdir / "mlruns"
    shutil.copytree(RECORDS, home)
    with sqlite3.connect(home / "mlflow.db") as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for column in db.execute(f"PRAGMA table_info({table})").fetchall():
                if "CHAR" in column[2].upper() or "TEXT" in column[2].upper():
                    db.execute(
                        f"UPDATE {table} SET {column[1]} = REPLACE({column[1]}, ?, ?)",
                        (WRITTEN_AT, str(home)),
                    )
    return home


@pytest.fixture
def records(workdir: Path) -> Path:
    moved_records(workdir)
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    yield workdir
    mlflow.set_tracking_uri(None)


def test_older_studies_read(records, capsys):
    from tuner.cli import main

    assert main(["trials", "--study", "air"]) == 0
    table = capsys.readouterr().out
    assert table.count("COMPLETE") == 3
    # its trials carry one attribute per key (no `record`): read as the newer ones are
    study = load_study("air")
    best = study.best_trial
    assert "record" not in best.user_attrs and attrs_of(best) == best.user_attrs
    found = summarize(study, "", "")
    assert found.model_version == best.user_attrs["model_version"]
    assert found.test_metrics["test_mae"] == best.user_attrs["test_mae"]
    assert main(["best", "--study", "air-ft"]) == 0
    assert "val_mae" in capsys.readouterr().out
    assert main(["lineage", "models:/air-finetuned/1"]) == 0
    assert "study 'air'" in capsys.readouterr().out


@pytest.mark.parametrize("name", MODELS)
def test_older_logged_models_load_through_mlflow_and_predict(records, name):
    """MLflow's own client imports the loader module the MLmodel file names."""
    model = mlflow.pyfunc.load_model(f"models:/{name}@best")
    frame = pd.read_csv(REPO / "tasks" / "data" / "air_passengers.csv")
    predicted = model.predict(frame)
    assert list(predicted.columns) == ["unique_id", "ds", "y_hat"] and len(predicted) == 6
    assert predicted.y_hat.notna().all()


def test_older_fine_tune_and_study_resume(records, capsys):
    """The fine-tune first: a resumed sweep may find a new best, a source of its own."""
    from tuner.cli import main

    argv = ["finetune", "--from", "study:air", "--max-epochs", "1", "--study", "air-ft"]
    assert main([*argv, *DATA, "--quiet"]) == 0, capsys.readouterr().err
    assert "study air-ft: 2 complete" in capsys.readouterr().out
    (records / "tiny.yaml").write_text(SPACE)
    argv = ["search", "--task", "forecasting", "--space", "tiny.yaml", "--study", "air"]
    assert main([*argv, "--trials", "4", *DATA, "--quiet"]) == 0, capsys.readouterr().err
    assert "study air: 4 complete" in capsys.readouterr().out
    parents = "tags.`tuner.role` = 'study'"
    runs = mlflow.search_runs(experiment_names=["air"], filter_string=parents)
    assert len(runs) == 1  # the resumed sweep went on in its parent run
