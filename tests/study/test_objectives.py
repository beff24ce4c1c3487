"""Beyond one number, on real training and real stores: a two-objective study keeps its
Pareto front (printed by `tuner best`, every member registered), a constraint picks from
it, and a constrained study does not train the models that break its constraint."""

from __future__ import annotations

import re

import optuna
from mlflow import MlflowClient

from tests.conftest import TINY_SPACE
from tuner.cli import main
from tuner.config import keys
from tuner.config.trial_attrs import of as attrs_of
from tuner.contract.registry import get_task
from tuner.storage.locations import default_tracking_uri
from tuner.storage.studies import load_study
from tuner.study._summary import model_version

TWO_OBJECTIVES = TINY_SPACE.replace("max_epochs: 2", "max_epochs: 4") + (
    "objectives:\n  - {metric: val_mae, direction: minimize}\n  - {metric: params}\n"
)


def _search(*extra: str) -> int:
    return main(["search", "--task", "forecasting", "--space", "space.yaml", "--seed", "1",
                 *extra])  # fmt: skip


def _parameter_count(settings: dict) -> int:
    """What the model of these settings has, counted here, not by the code under test."""
    task = get_task("forecasting")
    data = task.load_data({"data": task.default_data})
    datamodule = task.build_datamodule(data, {**settings, "seed": 0, "fold": 0})
    model = task.build_model(settings, datamodule)
    return sum(p.numel() for p in model.parameters())


def _front_of(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """Non-dominated trials (both objectives minimised), by brute force."""

    def dominates(a, b):
        return (
            all(x <= y for x, y in zip(a.values, b.values, strict=True)) and a.values != b.values
        )

    return {t.number for t in trials if not any(dominates(o, t) for o in trials)}


def test_a_two_objective_study_keeps_its_front_and_registers_every_member(workdir, capsys):
    (workdir / "space.yaml").write_text(TWO_OBJECTIVES)
    assert _search("--trials", "8", "--study", "pareto") == 0
    out = capsys.readouterr().out
    assert "multi-objective study (val_mae, params)" in out
    assert "max_epochs 4 -> 2 per trial" in out
    study = load_study("pareto")
    assert [d.name for d in study.directions] == ["MINIMIZE", "MINIMIZE"]
    assert study.user_attrs[keys.BEST_RULE] == (
        "lowest val_mae on the Pareto front, then val_loss, then the earliest"
    )
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 8  # no pruning in a multi-objective study
    for trial in complete:
        assert trial.values[1] == attrs_of(trial)["params"]
        assert trial.values[1] == _parameter_count(attrs_of(trial)[keys.SETTINGS])
        assert attrs_of(trial)[keys.EPOCHS] == 2
    front = _front_of(complete)

    assert main(["best", "--study", "pareto"]) == 0
    printed = capsys.readouterr().out
    listed = {int(n) for n in re.findall(r"^  trial (\d+) ", printed, re.M)}
    assert listed == front
    by_value = min((t for t in complete if t.number in front), key=lambda t: t.values[0])
    assert f"best trial {by_value.number}:" in printed

    # every front member's model is registered; `best` is the best first objective
    client = MlflowClient(default_tracking_uri())
    for trial in complete:
        assert (model_version(study, trial) is not None) >= (trial.number in front)
    alias = client.get_model_version_by_alias("pareto", "best")
    assert str(alias.version) == model_version(study, by_value)

    assert main(["report", "--study", "pareto"]) == 0
    page = (workdir / "mlruns" / "reports" / "pareto" / "report.html").read_text()
    assert "Pareto front" in page and (workdir / "mlruns/reports/pareto/pareto.png").stat().st_size

    _check_a_constraint_picks_the_best_front_member_within_it(capsys)


def _check_a_constraint_picks_the_best_front_member_within_it(capsys):
    study = load_study("pareto")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    front = [t for t in complete if t.number in _front_of(complete)]
    bound = sorted(t.values[1] for t in front)[len(front) // 2]
    within = [t for t in front if t.values[1] <= bound]
    wanted = min(within, key=lambda t: (t.values[0], t.number))

    assert main(["best", "--study", "pareto", "--constraint", f"params<={bound:g}"]) == 0
    printed = capsys.readouterr().out
    assert f"best trial {wanted.number} meeting params<={bound:g}:" in printed
    listed = {int(n) for n in re.findall(r"^  trial (\d+) ", printed, re.M)}
    assert listed == {t.number for t in within}
    assert main(["best", "--study", "pareto", "--constraint", "params<=1"]) == 0
    assert "no complete trial meeting params<=1" in capsys.readouterr().out


def test_a_constrained_study_trains_no_model_that_breaks_it(workdir, capsys):
    """hidden_size 4-16 gives models of about 100 to 1300 parameters: with params<=500 the
    larger ones are stopped before training, recorded with why, and never the best."""
    (workdir / "space.yaml").write_text(TINY_SPACE)
    assert _search("--trials", "10", "--study", "small", "--pruner", "none",
                   "--constraint", "params<=500,latency_ms<=60000") == 0  # fmt: skip
    study = load_study("small")
    states = {t.number: t.state.name for t in study.trials}
    broke = [t for t in study.trials if keys.INFEASIBLE in attrs_of(t)]
    kept = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert broke and kept and len(study.trials) == 10
    assert study.user_attrs[keys.BEST_RULE] == (
        "lowest val_mae among trials meeting params<=500, latency_ms<=60000, then val_loss, "
        "then the earliest"
    )
    for trial in broke:
        assert states[trial.number] == "PRUNED" and attrs_of(trial)["params"] > 500
        assert "breaks params<=500" in attrs_of(trial)[keys.INFEASIBLE]
        assert keys.EPOCHS not in attrs_of(trial)  # not trained
    for trial in kept:
        assert attrs_of(trial)["params"] <= 500 and attrs_of(trial)["latency_ms"] > 0
        assert attrs_of(trial)["params"] == _parameter_count(attrs_of(trial)[keys.SETTINGS])
    best = min(kept, key=lambda t: t.value)
    assert f"best trial {best.number}:" in capsys.readouterr().out

    client = MlflowClient(default_tracking_uri())
    run = client.get_run(attrs_of(broke[0])[keys.RUN_ID])
    assert (
        run.data.tags["tuner.state"] == "PRUNED"
        and "breaks params<=500" in run.data.tags["tuner.infeasible"]
    )
    assert run.data.metrics["params"] == attrs_of(broke[0])["params"]
    assert "val_mae" not in run.data.metrics

    # where every model breaks the constraints, the summary says so, not "none completed"
    capsys.readouterr()
    assert _search("--trials", "2", "--study", "none-fit", "--constraint", "params<=10") == 0
    out = capsys.readouterr().out
    assert "no trial met the search's constraints: 2 trial(s) built a model that broke them" in out
    assert "breaks params<=10" in out and "completed yet" not in out
