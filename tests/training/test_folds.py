"""Cross-validation and backtests: which items each fold validates on, when a study uses
folds, what a K-fold trial records and which model it keeps."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch
from mlflow import MlflowClient

import tuner
from tests.conftest import AIR, REPO, make_long_csv
from tuner.cli.printing import print_result
from tuner.config.space_file import load_space, parse_space
from tuner.config.trial_attrs import of as attrs_of
from tuner.contract.checkpoints import load_checkpoint, restore_model, save_checkpoint
from tuner.contract.members import carried, carry, mean_of
from tuner.errors import CheckpointError, SpaceError
from tuner.models.finetune import evaluate
from tuner.models.sources import load_source
from tuner.storage.locations import default_tracking_uri, resolve_storage
from tuner.storage.studies import load_study
from tuner.tasks.classification.data import assign_splits, read_sequences
from tuner.tasks.classification.task import TASK as CLASSIFIER
from tuner.tasks.forecasting.data import SeriesSet, read_series, split_points
from tuner.tasks.forecasting.task import TASK as FORECASTER
from tuner.tasks.forecasting.task import ForecastData
from tuner.training.folds import AUTO_BELOW, stratified_folds

VOWELS = REPO / "tasks" / "data" / "japanese_vowels.npz"
TWO_FOLDS = """
metric: val_mae
params:
  hidden_size: {type: int, low: 4, high: 16, log: true}
fixed:
  input_len: 12
  horizon: 6
  max_epochs: 3
  batch_size: 32
  folds: 2
"""


# ---------------------------------------------------------------- which items a fold sees


def test_stratified_folds_are_disjoint_balanced_and_keep_class_shares():
    labels = np.array(["a"] * 23 + ["b"] * 11 + ["c"] * 6)
    folds = stratified_folds(labels, 5)
    sizes = np.bincount(folds, minlength=5)
    assert sizes.sum() == len(labels) and sizes.max() - sizes.min() <= 1
    for label in "abc":
        per_fold = np.bincount(folds[labels == label], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1, (label, per_fold)
    assert (stratified_folds(labels, 5) == folds).all()  # the same folds for every trial


def test_classification_folds_validate_on_every_non_test_sequence_once():
    data = read_sequences({"data": str(VOWELS)})
    settings = {**CLASSIFIER.defaults, "folds": 5}
    holdout = assign_splits(data, {**settings, "folds": 1})
    seen = np.zeros(len(data.ids), dtype=int)
    for fold in range(5):
        split = assign_splits(data, settings, fold)
        assert ((split == "test") == (holdout == "test")).all()  # the test part never moves
        assert ((split == "train") | (split == "val"))[holdout != "test"].all()
        seen += split == "val"
    assert (seen[holdout != "test"] == 1).all() and (seen[holdout == "test"] == 0).all()
    everything = assign_splits(data, settings, None)  # fold None trains on all of them
    assert set(everything[holdout != "test"]) == {"train"}


def _index_series(length: int) -> SeriesSet:
    """One series whose values are their own time index: a window shows where it lies."""
    import pandas as pd

    from tuner.tasks.forecasting.data import Series
    from tuner.tasks.forecasting.timeaxis import Frequency

    dates = pd.date_range("2000-01-01", periods=length, freq="MS")
    series = (Series("s", dates, np.arange(length, dtype=float)),)
    return SeriesSet("index.csv", series, Frequency("MS"))


def test_backtest_windows_never_see_their_own_future():
    data = _index_series(100)
    base = {**FORECASTER.defaults, "input_len": 12, "horizon": 6, "folds": 3, "step": 4}
    for fold in range(3):
        tensors = ForecastData(data, {**base, "fold": fold}).tensors
        split = split_points(100, base, fold)
        assert (split.val_end, split.val_end - split.val_start) == (94 - 4 * fold, 6)
        train_targets, val_targets = tensors["train"][4], tensors["val"][4]
        assert train_targets.max() < split.val_start  # nothing trained on is validated on
        assert val_targets.min() == split.val_start and val_targets.max() == split.val_end - 1
        assert tensors["test"][4].min() == 94  # the test part stays the last horizon


def test_fold_one_is_the_plain_hold_out():
    settings = {**FORECASTER.defaults, "horizon": 12, "folds": 1}
    split = split_points(144, settings)
    assert (split.val_start, split.val_end, split.test_start) == (120, 132, 132)


# ---------------------------------------------------------------- when a study uses folds


def _default_space(task):
    return load_space(REPO / "search_spaces" / f"{task.name}.yaml", task.spec)


def test_small_data_gets_folds_and_says_so_in_one_line():
    space, notes = FORECASTER.fit_space(
        _default_space(FORECASTER), read_series({"data": str(AIR)})
    )
    assert space.fixed["folds"] == 4
    (said,) = [note for note in notes if note.startswith("folds:")]
    assert "4 backtests" in said and "--set folds=1" in said
    space, notes = CLASSIFIER.fit_space(
        _default_space(CLASSIFIER), read_sequences({"data": str(VOWELS)})
    )
    (said,) = [note for note in notes if note.startswith("folds:")]
    assert space.fixed["folds"] == 5 and "5 stratified folds" in said


def test_big_data_and_an_explicit_folds_keep_what_they_say(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "big.npz"
    np.savez(path, X=rng.normal(size=(2000, 5, 2)), y=rng.integers(0, 3, 2000).astype(str))
    big = read_sequences({"data": str(path)})
    holdout = assign_splits(big, {**CLASSIFIER.defaults, "folds": 1})
    assert (holdout == "val").sum() >= AUTO_BELOW
    space, notes = CLASSIFIER.fit_space(_default_space(CLASSIFIER), big)
    assert space.fixed["folds"] == 1 and not [n for n in notes if n.startswith("folds:")]
    many = read_series({"data": str(make_long_csv(tmp_path / "many.csv", n_series=AUTO_BELOW))})
    space, _ = FORECASTER.fit_space(_default_space(FORECASTER), many)
    assert space.fixed["folds"] == 1
    air = read_series({"data": str(AIR)})
    for folds in (1, 3):
        space = _default_space(FORECASTER).with_fixed({"folds": folds})
        assert FORECASTER.fit_space(space, air)[0].fixed["folds"] == folds


def test_input_len_is_clipped_to_the_earliest_backtest(tmp_path):
    data = read_series({"data": str(make_long_csv(tmp_path / "s.csv", length=60))})
    raw = {
        "params": {"input_len": {"type": "int", "low": 6, "high": 48}},
        "fixed": {"horizon": 6, "folds": 3},
    }
    space, notes = FORECASTER.fit_space(parse_space(raw, FORECASTER.spec, "s.yaml"), data)
    # 60 values - 6 test - 6 validation - 2 x 6 earlier cutoffs = 36 for training, minus 6
    assert space.param("input_len").high == 30
    assert any("earliest backtest" in note for note in notes)


def test_folds_cannot_be_searched():
    raw = {"params": {"folds": {"type": "int", "low": 1, "high": 5}}}
    space = parse_space(raw, FORECASTER.spec, "f.yaml")
    with pytest.raises(SpaceError, match="f.yaml: params.folds: .*cannot be searched"):
        FORECASTER.fit_space(space, read_series({"data": str(AIR)}))


def test_series_too_short_for_the_folds_asked_are_refused(tmp_path):
    data = read_series({"data": str(make_long_csv(tmp_path / "s.csv", length=40))})
    raw = {"fixed": {"horizon": 6, "input_len": 12, "folds": 4}}
    with pytest.raises(Exception, match="too short .* and 4 backtest windows"):
        FORECASTER.fit_space(parse_space(raw, FORECASTER.spec, "s.yaml"), data)


# ---------------------------------------------------------------- a K-fold trial


def _trial_run(study: str, number: int):
    client = MlflowClient(default_tracking_uri())
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id], "tags.`tuner.role` = 'trial'")
    return client, next(r for r in runs if r.data.tags["tuner.trial"] == str(number))


def test_a_k_fold_trial_records_each_fold_and_keeps_its_latest_backtest(workdir, capsys):
    (workdir / "two.yaml").write_text(TWO_FOLDS)
    result = tuner.search(
        "forecasting", trials=1, space="two.yaml", pruner="none", quiet=True, study="kf"
    )
    trial = load_study("kf").trials[0]
    folds = attrs_of(trial)["fold_values"]
    assert len(folds) == 2 and trial.value == pytest.approx(np.mean(folds))
    assert attrs_of(trial)["value_std"] == pytest.approx(np.std(folds))
    assert attrs_of(trial)["epochs"] == 6 and not trial.intermediate_values  # no pruner
    assert result.fold_values == folds
    print_result(result)  # chosen on folds: the summary names the fresh fits
    assert "tuner ensemble --study kf --top 5 --seeds 3" in capsys.readouterr().out
    client, run = _trial_run("kf", 0)
    metrics = run.data.metrics
    assert metrics["val_mae_fold_0"] == pytest.approx(folds[0])
    assert metrics["val_mae_fold_1"] == pytest.approx(folds[1])
    assert metrics["best_val_mae"] == pytest.approx(trial.value)
    assert "val_snaive_mae" in metrics and "test_mae" in metrics
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_mae")]
    assert steps == [0, 1, 2, 3, 4, 5]
    # backtests keep the latest one's model: on its own window it scores fold 0's value
    payload = load_source("study:kf", default_tracking_uri(), resolve_storage(None)).payload
    assert payload["members"] == 0
    model = restore_model(payload, FORECASTER)
    data = read_series({"data": str(AIR)})
    again = evaluate(model, FORECASTER, data, payload["settings"], "val_mae")
    assert again == pytest.approx(folds[0], rel=1e-5)


def test_backtests_keep_their_newest_half_averaged(workdir):
    (workdir / "two.yaml").write_text(TWO_FOLDS.replace("folds: 2", "folds: 3"))
    tuner.search("forecasting", trials=1, space="two.yaml", pruner="none", quiet=True,
                 study="three")  # fmt: skip
    payload = load_source("study:three", default_tracking_uri(), resolve_storage(None)).payload
    assert payload["members"] == 1  # folds 0 and 1 of 3: the two newest backtests
    kept = restore_model(payload, FORECASTER)
    x = torch.randn(2, 12)
    with torch.no_grad():
        pair = (type(kept).forward(kept, x) + carried(kept)[0](x)) / 2
        assert torch.allclose(kept(x), pair)


def test_stratified_fold_models_are_kept_as_one_that_averages_them(workdir):
    overrides = {**CLASSIFIER.smoke, "folds": 3, "hidden_size": 4, "max_epochs": 1}
    tuner.search("classification", trials=1, overrides=overrides, pruner="none", quiet=True,
                 study="cv")  # fmt: skip
    trial = load_study("cv").trials[0]
    assert len(attrs_of(trial)["fold_values"]) == 3
    payload = load_source("study:cv", default_tracking_uri(), resolve_storage(None)).payload
    assert payload["members"] == 2
    kept = restore_model(payload, CLASSIFIER)
    x, lengths = torch.randn(5, 7, 12), torch.tensor([7, 5, 3, 7, 1])
    with torch.no_grad():
        alone = [type(kept).forward(kept, x, lengths)] + [m(x, lengths) for m in carried(kept)]
        mean = torch.stack([a.softmax(-1) for a in alone]).mean(0)
        assert torch.allclose(kept(x, lengths).softmax(-1), mean, atol=1e-6)
    table = tuner.predict("study:cv", options={"proba": True})
    assert np.allclose(table.filter(like="p_").sum(axis=1), 1.0)


def test_fold_zero_of_k_folds_is_the_hold_out_trial(workdir):
    (workdir / "two.yaml").write_text(TWO_FOLDS)
    pinned = {"hidden_size": 8}
    tuner.search("forecasting", trials=1, space="two.yaml", pruner="none", quiet=True,
                 study="two", overrides=pinned)  # fmt: skip
    tuner.search("forecasting", trials=1, space="two.yaml", pruner="none", quiet=True,
                 study="one", overrides={**pinned, "folds": 1})  # fmt: skip
    two, one = load_study("two").trials[0], load_study("one").trials[0]
    assert "fold_values" not in attrs_of(one)
    assert one.value == pytest.approx(attrs_of(two)["fold_values"][0])


class PruneInSecondFold(optuna.pruners.BasePruner):
    """A real Optuna pruner that prunes a trial once it reports a step of its second fold."""

    def __init__(self, fold_steps: int) -> None:
        self.fold_steps = fold_steps

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return (trial.last_step or 0) >= self.fold_steps


def test_pruning_a_k_fold_trial_records_the_fold_it_reached(workdir):
    (workdir / "two.yaml").write_text(TWO_FOLDS)
    tuner.search("forecasting", trials=1, space="two.yaml", quiet=True, study="p",
                 pruner=PruneInSecondFold(3))  # fmt: skip
    trial = load_study("p").trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert (attrs_of(trial)["pruned_at_fold"], attrs_of(trial)["pruned_at_epoch"]) == (
        1,
        0,
    )
    _, run = _trial_run("p", 0)
    assert (run.data.tags["tuner.pruned_at_fold"], run.data.tags["tuner.state"]) == (
        "1",
        "PRUNED",
    )


def test_a_fine_tune_of_a_k_fold_model_compares_on_one_hold_out(workdir):
    (workdir / "two.yaml").write_text(TWO_FOLDS)
    tuner.search("forecasting", trials=1, space="two.yaml", pruner="none", quiet=True,
                 study="src")  # fmt: skip
    result = tuner.finetune("study:src", max_epochs=2, quiet=True)
    tuned = load_study(result.search.study)
    assert attrs_of(tuned.trials[0])["settings"]["folds"] == 1
    assert result.before > 0 and result.after is not None


# ---------------------------------------------------------------- models kept as one


def test_averaged_classifiers_give_the_mean_probabilities():
    from tuner.tasks.classification.task import average_probabilities

    logits = [torch.randn(4, 3), torch.randn(4, 3)]
    combined = average_probabilities(logits)
    expected = (logits[0].softmax(-1) + logits[1].softmax(-1)) / 2
    assert torch.allclose(combined.softmax(-1), expected, atol=1e-6)
    assert torch.allclose(
        average_probabilities([logits[0]] * 3).softmax(-1), logits[0].softmax(-1)
    )


def test_a_checkpoint_of_several_models_restores_them_and_refuses_absurd_counts(tmp_path):
    settings = {**FORECASTER.defaults, "input_len": 12, "horizon": 6, "hidden_size": 8}
    build = lambda: FORECASTER.model_class(**FORECASTER.spec.model_args(settings))  # noqa: E731
    model = carry(build(), [build(), build()], mean_of)
    path = save_checkpoint(tmp_path / "k.ckpt", model, "forecasting", settings, {})
    payload = load_checkpoint(path)
    restored = restore_model(payload, FORECASTER)
    x = torch.randn(2, 12)
    with torch.no_grad():
        assert torch.allclose(restored.eval()(x), model.eval()(x))
    assert len(carried(restored)) == 2
    with pytest.raises(CheckpointError, match="members"):
        restore_model({**payload, "members": 10**6}, FORECASTER)
