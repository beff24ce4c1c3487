"""Every task's baselines against the same figure computed here by hand, or by the library
called directly on the same split; the statistical ones computed once per study, recorded on
its parent run and shown beside the test figures."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow import MlflowClient

import tuner
from tests.conftest import AIR, make_long_csv
from tuner.cli import main
from tuner.config import keys
from tuner.config.trial_attrs import of as attrs_of
from tuner.contract.registry import get_task
from tuner.storage.locations import default_tracking_uri
from tuner.storage.studies import load_study
from tuner.tasks.charlm.baselines import ngram_bpc
from tuner.tasks.classification.baselines import resampled, summary_statistics
from tuner.tasks.classification.data import assign_splits
from tuner.tasks.forecasting.data import read_series

FORECASTER, CLASSIFIER = get_task("forecasting"), get_task("classification")


def test_forecasting_naive_and_ets_equal_what_they_are_by_hand(tmp_path):
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    path = make_long_csv(tmp_path / "two.csv", n_series=2, length=72)
    data = read_series({"data": str(path)})
    settings = {**FORECASTER.defaults, "horizon": 6, "folds": 1}
    simple = FORECASTER.baselines(FORECASTER.build_datamodule(data, {**settings, "fold": 0}))
    ets = FORECASTER.statistical_baselines(data, settings)
    naive_errors, ets_errors = [], []
    for series in data.series:
        y = series.values
        test = y[-6:]
        naive_errors.extend(np.abs(y[-7] - test))
        fits = [
            ExponentialSmoothing(y[:-6], trend=trend, damped_trend=trend is not None,
                                 seasonal=season, seasonal_periods=12 if season else None,
                                 initialization_method="estimated").fit()
            for trend in (None, "add") for season in (None, "add")
        ]  # fmt: skip
        best = min(fits, key=lambda fit: fit.aicc)
        ets_errors.extend(np.abs(best.forecast(6) - test))
    assert simple["test_naive_mae"] == pytest.approx(np.mean(naive_errors), rel=1e-9)
    assert ets["test_ets_mae"] == pytest.approx(np.mean(ets_errors), rel=1e-6)


def test_classification_nearest_neighbour_and_trees_equal_scikit_learn_called_directly():
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.neighbors import KNeighborsClassifier

    data = CLASSIFIER.load_data({"data": CLASSIFIER.default_data})
    settings = {**CLASSIFIER.defaults, "folds": 1}
    split = assign_splits(data, settings)
    labels = np.asarray(data.labels)
    steps = min(128, int(np.median([len(s) for s in data.sequences])))
    raw = np.stack([resampled(s, steps).ravel() for s in data.sequences])
    train, val, test = (split == part for part in ("train", "val", "test"))
    knn = KNeighborsClassifier(n_neighbors=1).fit(raw[train], labels[train])
    simple = CLASSIFIER.baselines(CLASSIFIER.build_datamodule(data, {**settings, "fold": 0}))
    assert simple["val_1nn_acc"] == pytest.approx((knn.predict(raw[val]) == labels[val]).mean())
    by_hand = (knn.predict(raw[test]) == labels[test]).mean()
    assert simple["test_1nn_acc"] == pytest.approx(by_hand)
    stats = np.stack([summary_statistics(s) for s in data.sequences])
    trees = ExtraTreesClassifier(n_estimators=200, random_state=0).fit(stats[~test], labels[~test])
    strong = CLASSIFIER.statistical_baselines(data, settings)
    by_hand = (trees.predict(stats[test]) == labels[test]).mean()
    assert strong["test_trees_acc"] == pytest.approx(by_hand)
    assert simple["test_majority_acc"] < strong["test_trees_acc"]


def test_the_ngram_counts_what_a_plain_loop_counts():
    train, val = "abracadabra " * 40 + "cab dab", "abra cadabra dab"
    order, alphabet = 3, len(set(train + val))
    bits = 0.0
    history = train[-(order - 1) :] + val
    for i in range(order - 1, len(history)):  # Witten-Bell, the slow way
        char = history[i]
        unigrams = {c: train.count(c) for c in set(train)}
        p = (unigrams.get(char, 0) + len(unigrams) / alphabet) / (len(train) + len(unigrams))
        for k in range(1, order):
            context = history[i - k : i]
            after = [train[j + k] for j in range(len(train) - k) if train[j : j + k] == context]
            if after:
                p = (after.count(char) + len(set(after)) * p) / (len(after) + len(set(after)))
        bits -= np.log2(p)
    assert ngram_bpc(train, val, alphabet, order) == pytest.approx(bits / len(val), rel=1e-9)


def test_speech_frequent_transcript_error_by_hand():
    from tuner.tasks.speech.baselines import frequent_transcript_baseline

    transcripts = ["one", "one", "two", "three", "one", "two", "tree"]
    split = np.array(["train", "train", "train", "val", "val", "test", "test"])
    metrics = frequent_transcript_baseline(transcripts, split)
    # "one" said for "three" (4 edits of 5) and "one" (0): 4 / 8
    assert metrics["val_frequent_cer"] == pytest.approx(4 / 8)
    # "one" said for "two" (3 edits of 3) and "tree" (3 of 4): 6 / 7
    assert metrics["test_frequent_cer"] == pytest.approx(6 / 7)
    assert metrics["test_frequent_wer"] == pytest.approx(1.0)


def test_statistical_baselines_are_computed_once_and_recorded_beside_the_test_figures(
    tiny_space, workdir, capsys
):
    tuner.search("forecasting", trials=1, space=str(tiny_space), data={"data": str(AIR)},
                 study="air", pruner="none")  # fmt: skip
    first = capsys.readouterr().out
    assert "note: baselines on the test part, once for the study" in first
    study = load_study("air")
    recorded = study.user_attrs[keys.STUDY_BASELINES]
    assert set(recorded) == {"test_ets_mae", "test_ets_rmse"}
    parent = MlflowClient(default_tracking_uri()).get_run(study.user_attrs[keys.PARENT_RUN_ID])
    assert parent.data.metrics["test_ets_mae"] == pytest.approx(recorded["test_ets_mae"])
    trial = study.trials[0]
    assert attrs_of(trial)["test_ets_mae"] == recorded["test_ets_mae"]
    assert "test_ets_mae" in attrs_of(trial)[keys.BASELINE_KEYS]

    tuner.search("forecasting", trials=2, space=str(tiny_space), data={"data": str(AIR)},
                 study="air", pruner="none")  # fmt: skip
    assert "note: baselines" not in capsys.readouterr().out  # read back, not computed again
    assert attrs_of(load_study("air").trials[1])["test_ets_mae"] == recorded["test_ets_mae"]
    assert main(["best", "--study", "air"]) == 0
    shown = capsys.readouterr().out
    assert f"test_ets_mae = {recorded['test_ets_mae']:.3f}" in shown.split("baseline (same)")[1]
