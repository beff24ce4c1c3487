"""The Python API takes the data itself, as NeuralForecast's fit(df) does: a DataFrame
(classification also arrays (X, y)) for search, predict and fine-tune, with workers too."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pandas as pd
import pytest

import tuner
from tests.conftest import make_long_csv
from tuner.config.trial_attrs import of as attrs_of
from tuner.errors import UsageError
from tuner.storage.locations import HOME, resolve_storage


@pytest.fixture
def frame(tiny_space):
    return pd.read_csv(make_long_csv(tiny_space.parent / "series.csv", n_series=2, length=60))


def test_a_dataframe_is_searched_by_workers_predicted_and_fine_tuned(tiny_space, frame):
    result = tuner.search(
        "forecasting",
        trials=2,
        data=frame,
        study="frame",
        space=str(tiny_space),
        pruner="none",
        workers=2,
        quiet=True,
    )
    assert result.counts["complete"] == 2 and math.isfinite(result.best_value)
    study = optuna.load_study(study_name="frame", storage=resolve_storage(None))
    assert study.user_attrs["data"] == {"data": None}  # no file names the frame
    assert not list(HOME.rglob("*.parquet"))  # the workers' copy is gone

    forecast = tuner.predict("study:frame", data=frame)
    assert list(forecast.columns) == ["unique_id", "ds", "y_hat"]
    assert sorted(forecast["unique_id"].unique()) == ["s0", "s1"] and len(forecast) == 12

    with pytest.raises(UsageError, match="names no data file"):
        tuner.finetune("study:frame", study="frame-ft", quiet=True)
    shifted = frame.assign(y=frame["y"] + 5)
    tuned = tuner.finetune("study:frame", data=shifted, study="frame-ft", max_epochs=1, quiet=True)
    assert math.isfinite(tuned.before) and math.isfinite(tuned.after)


def test_arrays_train_a_classifier_quietly_with_settings_as_arguments(workdir, capfd):
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 40)
    X = rng.normal(size=(80, 10, 3)) + y[:, None, None]  # the class shifts every step
    result = tuner.search(
        "classification",
        trials=1,
        data=(X, y),
        study="arrays",
        max_epochs=2,
        folds=1,
        settings={"hidden_size": 8},
        pruner="none",
        quiet=True,
    )
    assert result.counts["complete"] == 1 and 0.0 <= result.best_value <= 1.0
    trial = optuna.load_study(study_name="arrays", storage=resolve_storage(None)).trials[0]
    assert {k: attrs_of(trial)["settings"][k] for k in ("max_epochs", "folds", "hidden_size")} \
        == {"max_epochs": 2, "folds": 1, "hidden_size": 8}  # fmt: skip
    assert capfd.readouterr() == ("", "")  # quiet: not even the header
    assert result.model_uri == f"models:/arrays/{result.model_version}"
    assert result.trials()["number"].tolist() == [0]  # the trials, as a DataFrame


def test_the_api_names_its_arguments_as_the_cli_names_its_flags():
    import inspect

    from tuner.cli.main import build_parser

    named = set(inspect.signature(tuner.search).parameters)
    assert {"max_epochs", "folds", "patience", "settings", "quiet", "timeout"} <= named
    flags = {a.dest for a in _subparser(build_parser(["search"]), "search")._actions} - {"help"}
    assert flags - named - {"set", "data_keys"} == set(), flags - named


def test_data_in_memory_needs_a_study_name_and_creates_nothing_without(workdir, frame):
    with pytest.raises(UsageError, match="study='NAME'"):
        tuner.search("forecasting", trials=1, data=frame)
    assert not HOME.exists()


def _subparser(parser, name):
    import argparse

    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return actions[0].choices[name]
