"""End to end: real Lightning training, real Optuna SQLite storage, real MLflow store."""

from __future__ import annotations

import gc
import sqlite3
from contextlib import closing
from pathlib import Path

import mlflow
import optuna
import pytest
import sqlalchemy
import torch
from mlflow import MlflowClient

import tuner
from tests.conftest import search_cli
from tuner.config.trial_attrs import of as attrs_of
from tuner.contract.checkpoints import load_checkpoint, restore_model
from tuner.storage.locations import HOME, default_tracking_uri, resolve_storage
from tuner.storage.studies import load_study
from tuner.study.samplers import decides_at
from tuner.tasks.forecasting.task import TASK, to_original_units

STUDY = "forecasting-air_passengers"


def _runs(study: str = STUDY):
    client = MlflowClient(default_tracking_uri())
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("tuner.role") == "study"]
    children = [r for r in runs if r.data.tags.get("tuner.role") == "trial"]
    return client, parents, children


def test_trials_is_a_total_target_and_resume_reuses_the_parent_run(tiny_space):
    assert search_cli(tiny_space, 3, "--pruner", "none", "--quiet") == 0
    study = load_study(STUDY)
    assert len(study.trials) == 3
    _, parents, children = _runs()
    assert len(parents) == 1 and len(children) == 3
    parent_id = parents[0].info.run_id
    assert all(c.data.tags["mlflow.parentRunId"] == parent_id for c in children)

    assert search_cli(tiny_space, 5, "--pruner", "none", "--quiet") == 0
    study = load_study(STUDY)
    numbers = [t.number for t in study.trials]
    assert numbers == [0, 1, 2, 3, 4]
    client, parents, children = _runs()
    assert [p.info.run_id for p in parents] == [parent_id]
    assert sorted(int(c.data.tags["tuner.trial"]) for c in children) == numbers
    assert parents[0].info.status == "FINISHED"
    assert parents[0].data.metrics["n_complete"] == 5

    # a third run with the same target runs nothing, and adds no point to any figure
    assert search_cli(tiny_space, 5, "--quiet") == 0
    assert len(load_study(STUDY).trials) == 5
    for name, value in parents[0].data.metrics.items():
        history = client.get_metric_history(parent_id, name)
        assert len({(m.step, m.value) for m in history}) == len(history), name
        assert history[-1].value == value
    assert len(client.get_metric_history(parent_id, "n_complete")) == 2  # 3, then 5


def test_the_local_stores_run_in_wal_mode_and_other_sqlite_files_do_not(tiny_space, tmp_path):
    other = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'other.db'}")  # a user's own
    tuner.search("forecasting", trials=1, space=str(tiny_space), pruner="none", quiet=True)
    with other.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
    for name in ("optuna.db", "mlflow.db"):
        with closing(sqlite3.connect(HOME / name)) as database:
            assert database.execute("PRAGMA journal_mode").fetchone() == ("wal",), name
    _, _, children = _runs()  # the records read back through the log
    assert [c.data.tags["tuner.state"] for c in children] == ["COMPLETE"]
    assert children[0].info.run_name == "trial-0 complete"


def _live_lstms() -> int:
    gc.collect()
    return sum(isinstance(o, torch.nn.LSTM) for o in gc.get_objects())


def test_finished_trials_leave_no_model_alive(tiny_space):
    """A long study's memory must not grow with its trials: no trial's model (weights,
    optimizer state) may stay reachable once it ends (a cached Fabric once kept each)."""
    before = _live_lstms()
    tuner.search("forecasting", trials=3, space=str(tiny_space), pruner="none", quiet=True)
    assert _live_lstms() == before


def test_child_runs_carry_params_epoch_metrics_state_and_device(tiny_space):
    tuner.search("forecasting", trials=2, space=str(tiny_space), pruner="none", quiet=True)
    client, parents, children = _runs()
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["tuner.state"] == "COMPLETE"
        assert child.data.tags["tuner.device"].startswith("cpu")
        assert float(child.data.tags["tuner.duration_s"]) > 0
        assert {"hidden_size", "lr", "transform", "max_epochs"} <= set(child.data.params)
        history = client.get_metric_history(child.info.run_id, "val_mae")
        assert [m.step for m in history] == [0, 1]
        # train_loss of epoch e is logged at step e (not the previous epoch's value)
        train = client.get_metric_history(child.info.run_id, "train_loss")
        assert sorted(m.step for m in train) == [0, 1]
        assert {"train_loss", "val_loss", "val_rmse", "test_mae", "test_snaive_mae"} <= set(
            child.data.metrics
        )
        assert child.info.run_name.startswith("trial-")
    parent = parents[0]
    assert parent.data.tags["tuner.best_trial"] in {"0", "1"}
    artifacts = [a.path for a in client.list_artifacts(parent.info.run_id)]
    assert "trials.csv" in artifacts


@pytest.mark.parametrize("pruner, asked", [("median", [5, 10, 15]), ("hyperband", [1, 3, 9])])
def test_a_trial_reports_to_optuna_only_where_its_pruner_decides(tiny_space, pruner, asked):
    """Each report is a storage round trip as long as a small epoch: the pruner hears the
    steps it can decide at, and MLflow keeps the whole curve."""
    tuner.search("forecasting", trials=1, space=str(tiny_space), pruner=pruner, quiet=True,
                 overrides={"max_epochs": 16})  # fmt: skip
    trial = load_study(STUDY).trials[0]
    assert sorted(trial.intermediate_values) == asked
    assert attrs_of(trial)["epochs"] == 16
    client, _, children = _runs()
    history = client.get_metric_history(children[0].info.run_id, "val_mae")
    assert sorted(m.step for m in history) == list(range(16))
    recorded = {m.step: m.value for m in history}
    assert all(recorded[step] == pytest.approx(trial.intermediate_values[step]) for step in asked)


def test_decision_steps_of_each_pruner():
    steps = range(100)
    assert [s for s in steps if decides_at("hyperband")(s)] == [1, 3, 9, 27, 81]
    assert [s for s in steps if decides_at("median")(s)][:3] == [5, 10, 15]
    assert not any(decides_at("none")(s) for s in steps)
    assert all(decides_at(optuna.pruners.MedianPruner())(s) for s in steps)


def test_a_pruned_trial_is_recorded_as_pruned_in_optuna_and_mlflow(tiny_space):
    always = optuna.pruners.ThresholdPruner(upper=0.0)  # val_mae > 0 -> pruned at epoch 0
    result = tuner.search(
        "forecasting", trials=2, space=str(tiny_space), pruner=always, quiet=True
    )
    assert result.counts["pruned"] == 2 and result.best_trial is None
    study = load_study(STUDY)
    assert {t.state for t in study.trials} == {optuna.trial.TrialState.PRUNED}
    assert all(attrs_of(t)["pruned_at_epoch"] == 0 for t in study.trials)
    _, _, children = _runs()
    assert {c.data.tags["tuner.state"] for c in children} == {"PRUNED"}
    assert {c.data.tags["tuner.pruned_at_epoch"] for c in children} == {"0"}


def test_registered_best_checkpoint_reproduces_the_recorded_metric(tiny_space, monkeypatch):
    result = tuner.search(
        "forecasting", trials=3, space=str(tiny_space), pruner="none", quiet=True
    )
    client = MlflowClient(default_tracking_uri())
    version = client.get_model_version_by_alias(STUDY, "best")
    assert version.run_id == result.best_run_id
    model = client.get_logged_model(version.source.removeprefix("models:/"))
    linked = {m.key: m.value for m in model.metrics}
    assert linked["best_val_mae"] == pytest.approx(result.best_value)  # the model page
    history = client.get_metric_history(result.best_run_id, "val_mae")
    assert [m.step for m in history] == sorted({m.step for m in history})  # no extra point
    # MLflow's own client resolves the alias to the logged model and downloads it
    monkeypatch.setenv("MLFLOW_TRACKING_URI", default_tracking_uri())
    local = mlflow.artifacts.download_artifacts(f"models:/{STUDY}@best")
    path = next(Path(local).glob("data/*.ckpt"))
    payload = load_checkpoint(path, task="forecasting")
    assert payload["meta"]["trial"] == result.best_trial
    model = restore_model(payload, TASK)
    study = load_study(STUDY)
    data = TASK.load_data(study.user_attrs["data"])
    datamodule = TASK.build_datamodule(data, payload["settings"])
    model.errors.reset()
    with torch.no_grad():
        for batch in datamodule.val_dataloader():
            x, _, loc, scale, y_raw = batch
            model.errors.add(
                to_original_units(model(x), loc, scale, model.hparams.transform), y_raw
            )
    assert model.errors.mae() == pytest.approx(result.best_value, rel=1e-5)


def test_same_seed_and_params_give_the_same_metric(tiny_space):
    values = []
    HOME.mkdir()
    for name in ("a", "b"):
        study = optuna.create_study(study_name=name, storage=resolve_storage(None))
        study.enqueue_trial({"hidden_size": 8, "lr": 0.005, "transform": "log"})
        result = tuner.search(
            "forecasting",
            trials=1,
            space=str(tiny_space),
            study=name,
            pruner="none",
            seed=7,
            quiet=True,
        )
        values.append(result.best_value)
    assert values[0] == values[1]


def test_the_best_alias_never_moves_to_a_worse_model(workdir):
    """Hosts register their trials' models in any order: one that registers after a better
    one has (its check against the study's best ran before that trial finished) leaves the
    alias where it is. Ranks are (sign * value, tie score), lower is better."""
    from tuner.config.keys import RANK_TAG, STUDY_TAG, TIE_TAG
    from tuner.tracking import StudyTracker

    tracker = StudyTracker(default_tracking_uri(), "race", model_name="race")
    client = tracker.client
    client.create_registered_model("race")
    ranks = [(8.0, 0.1), (5.0, 0.4), (6.0, 0.0), (5.0, 0.2), (5.0, 0.3)]
    versions = [
        client.create_model_version(
            "race",
            source=(workdir / "model").as_uri(),
            tags={RANK_TAG: repr(rank[0]), TIE_TAG: repr(rank[1]), STUDY_TAG: "race"},
        ).version
        for rank in ranks
    ]
    for version, rank in zip(versions, ranks, strict=True):
        tracker.move_best_alias(version, rank)
    # 6.0 came later but is worse; of the three 5.0, the one with the best tie score wins
    assert client.get_model_version_by_alias("race", "best").version == versions[3]


def test_ties_go_to_the_better_tie_break_metric_then_the_earlier_trial(workdir):
    """Many trials reach val_acc 1.0 on a small validation part: the study's best is the
    one with the lowest val_loss among them (report.best_trial, which every place that
    picks a best trial asks), not the first."""
    from optuna.trial import create_trial

    from tuner.reports.ranking import best_trial

    HOME.mkdir()
    study = optuna.create_study(
        study_name="ties", storage=resolve_storage(None), direction="maximize"
    )
    for value, tie in [(0.9, 0.01), (1.0, 0.30), (1.0, 0.12), (1.0, 0.12), (1.0, None)]:
        attrs = {} if tie is None else {"tie_score": tie}
        study.add_trial(create_trial(value=value, user_attrs=attrs))
    assert best_trial(study).number == 2
    assert study.best_trial.number == 1  # what Optuna alone would keep
