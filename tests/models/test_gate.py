"""The gate on `@best`, on real training and a real MLflow store: a worse ensemble or a worse
fine-tune is recorded as a version but never takes the alias; every model is scored on the
same validation rows; a best model that loses to a simple baseline says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

import tuner
from tests.conftest import TINY_SPACE, make_long_csv
from tuner.cli import main
from tuner.config import keys
from tuner.config.trial_attrs import of as attrs_of
from tuner.storage.locations import default_tracking_uri
from tuner.storage.studies import load_study
from tuner.study._summary import model_version

GOOD = {"lr": 1e-2, "max_epochs": 15, "scaling": "global", "transform": "none"}
# an untrained model scaled by the series' training part forecasts about its training
# mean: far below a trending series' later values, and far worse than seasonal naive
UNTRAINED = {"lr": 1e-7, "max_epochs": 1, "scaling": "global", "transform": "none"}
# (one scaling and transform for both: an ensemble reads its members in one frame)


def _search(space, data, study, overrides, trials, allow_changes=False):
    return tuner.search("forecasting", trials=trials, space=str(space), study=study,
                        data={"data": str(data)}, overrides=overrides, pruner="none",
                        quiet=True, allow_changes=allow_changes)  # fmt: skip


def _alias(name: str):
    try:
        return MlflowClient(default_tracking_uri()).get_model_version_by_alias(name, "best")
    except MlflowException:
        return None


@pytest.fixture
def folds_space(workdir):
    path = workdir / "folds.yaml"
    changes = {
        "folds: 1": "folds: 2",
        "keep_top: 0": "keep_top: 5",
        "max_epochs: 2": "max_epochs: 3",
    }
    text = TINY_SPACE
    for old, new in changes.items():
        text = text.replace(old, new)
    path.write_text(text)
    return path


def test_a_worse_ensemble_is_recorded_but_leaves_best_where_it_was(folds_space, workdir, capsys):
    data = make_long_csv(workdir / "a.csv", n_series=2, length=72)
    _search(folds_space, data, "gate", GOOD, trials=1)
    _search(folds_space, data, "gate", UNTRAINED, trials=2, allow_changes=True)
    study = load_study("gate")
    good, bad = study.trials
    assert good.value < bad.value
    capsys.readouterr()

    assert main(["ensemble", "--study", "gate", "--trials", "0,1"]) == 0
    printed = capsys.readouterr().out
    assert "not aliased @best" in printed and "@best (trial 0)" in printed
    assert _alias("gate-ensemble") is None  # its first version included
    assert str(_alias("gate").version) == model_version(study, good)
    client = MlflowClient(default_tracking_uri())
    version = client.get_model_version("gate-ensemble", "1")  # recorded all the same
    assert version.tags[keys.ROWS_TAG] == "gate: the validation part"
    run = client.get_run(version.run_id)
    # one figure, computed one way: the best trial scored by the ensemble's code on the
    # fold it kept gives back the value its own fold recorded
    kept_fold = attrs_of(good)[keys.FOLD_VALUES][0]
    assert run.data.metrics["holder_val_mae"] == pytest.approx(kept_fold, rel=1e-4)
    assert run.data.metrics["val_mae"] > kept_fold
    assert f"val_mae = {run.data.metrics['val_mae']:.4f}" in printed

    assert main(["best", "--study", "gate"]) == 0
    best = capsys.readouterr().out
    assert "(alias models:/gate@best)" in best
    assert "it takes @best only if it beats trial 0 on validation" in best


def test_a_worse_finetune_keeps_its_version_but_not_the_alias(tiny_space, workdir, capsys):
    data = make_long_csv(workdir / "a.csv", n_series=1, length=60)
    _search(tiny_space, data, "src", GOOD, trials=1)
    shifted = workdir / "b.csv"
    frame = pd.read_csv(data).assign(y=lambda f: 3 * f.y + 200)
    frame.to_csv(shifted, index=False)
    first = tuner.finetune("study:src", data={"data": str(shifted)}, lr=0.01, max_epochs=15,
                           patience=0, quiet=True)  # fmt: skip
    assert first.after < first.before and first.search.not_promoted is None
    assert str(_alias("src-finetuned").version) == "1"

    again = shifted.with_name("c.csv")  # the same rows: the holder scores as it did
    frame.to_csv(again, index=False)
    capsys.readouterr()
    code = main(["finetune", "--from", "study:src", "--data", str(again), "--lr", "5",
                 "--max-epochs", "2", "--quiet"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    study = load_study("src-ft-c")
    trial = study.best_trial
    held = float(printed.split("on the same rows: ")[1].split()[0])
    assert held == pytest.approx(first.after, rel=1e-3)
    assert trial.value > held
    assert attrs_of(trial)[keys.NOT_PROMOTED] == pytest.approx(min(held, first.before), abs=1e-4)
    assert "models:/src-finetuned/2, not aliased @best" in printed
    assert str(_alias("src-finetuned").version) == "1"


def test_a_model_worse_than_seasonal_naive_says_so(tiny_space, workdir, capsys):
    data = make_long_csv(workdir / "a.csv", n_series=2, length=60)
    _search(tiny_space, data, "naive", UNTRAINED, trials=1)
    trial = load_study("naive").best_trial
    # seasonal naive by hand: validation is the 6 months before the 6 test months, each
    # forecast the value 12 months earlier
    frame = pd.read_csv(data)
    errors = []
    for _, series in frame.groupby("unique_id"):
        y = series.y.to_numpy()
        val = np.arange(len(y) - 12, len(y) - 6)
        errors.extend(np.abs(y[val] - y[val - 12]))
    assert attrs_of(trial)["val_snaive_mae"] == pytest.approx(np.mean(errors), rel=1e-5)
    assert trial.value > attrs_of(trial)["val_snaive_mae"]
    capsys.readouterr()
    assert main(["best", "--study", "naive"]) == 0
    printed = capsys.readouterr().out
    expected = f"val_snaive_mae = {attrs_of(trial)['val_snaive_mae']:.4f}"
    assert "does not beat a simple baseline on the same validation rows" in printed
    assert expected in printed


def test_poisoned_test_rows_move_no_validation_figure_or_choice(tiny_space, workdir):
    clean = make_long_csv(workdir / "clean.csv", n_series=2, length=60)
    frame = pd.read_csv(clean)
    test_rows = frame.groupby("unique_id").cumcount(ascending=False) < 6  # horizon 6
    poisoned = workdir / "poisoned.csv"
    frame.assign(y=frame.y.where(~test_rows, frame.y * 1000)).to_csv(poisoned, index=False)
    seen = []
    for data in (clean, poisoned):
        tuner.search("forecasting", trials=3, space=str(tiny_space), data={"data": str(data)},
                     study=data.stem, pruner="none", quiet=True)  # fmt: skip
        study = load_study(data.stem)
        seen.append(
            [
                (
                    t.value,
                    t.params,
                    attrs_of(t)["val_snaive_mae"],
                    attrs_of(t)["test_mae"],
                )
                for t in study.trials
            ]
            + [study.best_trial.number]  # fmt: skip
        )
    for clean_trial, poisoned_trial in zip(seen[0][:-1], seen[1][:-1], strict=True):
        assert clean_trial[:3] == poisoned_trial[:3]  # value, params, validation baseline
        assert poisoned_trial[3] > 100 * clean_trial[3]  # the test part did change
    assert seen[0][-1] == seen[1][-1]
