"""`tuner ensemble --seeds N` on real training and real stores: the chosen trial's
configuration trained again with other seeds (its own study), averaged, registered, traced
back to the trial; a larger N trains only the new seeds; mistakes change nothing."""

from __future__ import annotations

import re
import shutil

import pytest
from mlflow import MlflowClient

import tuner
from tests.conftest import AIR
from tuner.cli import main
from tuner.config import keys
from tuner.config.trial_attrs import of as attrs_of
from tuner.reports.ranking import best_trial
from tuner.storage.locations import default_tracking_uri, resolve_storage
from tuner.storage.studies import load_study, read_studies


@pytest.fixture
def swept(tiny_space, workdir):
    data = workdir / "air.csv"
    shutil.copy(AIR, data)
    tuner.search("forecasting", trials=3, space=str(tiny_space), data={"data": str(data)},
                 pruner="none", quiet=True, study="air", seed=7)  # fmt: skip
    return load_study("air"), data


def _runs() -> int:
    client = MlflowClient(default_tracking_uri())
    return sum(len(client.search_runs([e.experiment_id])) for e in client.search_experiments())


def test_fresh_fits_of_the_best_trial_are_averaged_and_registered(swept, capsys):
    source, _ = swept
    chosen = best_trial(source)
    assert main(["ensemble", "--study", "air", "--seeds", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"ensemble of 2 fresh fits of trial {chosen.number} of study air" in printed
    recorded = attrs_of(chosen)["test_mae"]
    assert f"@best (trial {chosen.number}): {recorded:.4f}" in printed  # scored again, same

    fits = load_study(f"air-t{chosen.number}-seeds")
    complete = [t for t in fits.trials if t.state.name == "COMPLETE"]
    assert sorted(t.params["train_seed"] for t in complete) == [8, 9]  # --seed 7, plus 1, 2
    settings = {k: v for k, v in attrs_of(chosen)[keys.SETTINGS].items() if k != "keep_top"}
    for trial in complete:
        own = attrs_of(trial)[keys.SETTINGS]
        assert {k: own[k] for k in settings if k != "train_seed"} == {
            k: v for k, v in settings.items() if k != "train_seed"
        }
    values = {chosen.value, *(t.value for t in complete)}
    assert len(values) == 3  # other seeds train other models

    client = MlflowClient(default_tracking_uri())
    version = client.get_model_version("air-seeds-ensemble", "1")
    run = client.get_run(version.run_id)
    shown = float(re.search(r"  test_mae = ([0-9.]+)", printed).group(1))
    assert run.data.metrics["test_mae"] == pytest.approx(shown, abs=1e-4)
    assert run.data.tags[keys.MEMBERS_TAG] == ",".join(
        str(t.number) for t in sorted(complete, key=lambda t: (t.value, t.number))
    )
    fit_run = client.get_run(attrs_of(complete[0])[keys.RUN_ID])
    assert fit_run.data.tags[keys.SOURCE_RUN_TAG] == attrs_of(chosen)[keys.RUN_ID]

    # a larger N trains only the seeds not yet run; the ensemble takes every fit
    assert main(["ensemble", "--study", "air", "--seeds", "3"]) == 0
    assert "ensemble of 3 fresh fits" in capsys.readouterr().out
    fits = load_study(f"air-t{chosen.number}-seeds")
    assert sorted(t.params["train_seed"] for t in fits.trials) == [8, 9, 10]
    assert client.get_model_version("air-seeds-ensemble", "2").run_id != version.run_id


def test_fresh_fits_of_the_top_trials_lead_with_the_best(swept, capsys):
    source, _ = swept
    best, second = sorted(
        (t for t in source.trials if t.state.name == "COMPLETE"), key=lambda t: (t.value, t.number)
    )[:2]
    assert main(["ensemble", "--study", "air", "--top", "2", "--seeds", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"4 fresh fits of trials {best.number}, {second.number} of study air" in printed

    fits = load_study(f"air-t{best.number}-{second.number}-seeds")
    complete = [t for t in fits.trials if t.state.name == "COMPLETE"]
    client = MlflowClient(default_tracking_uri())
    runs = {attrs_of(best)[keys.RUN_ID]: best, attrs_of(second)[keys.RUN_ID]: second}
    trained = []
    for fit in complete:  # each fit: its source trial's settings, a fresh seed, its lineage
        source_run = client.get_run(attrs_of(fit)[keys.RUN_ID]).data.tags[keys.SOURCE_RUN_TAG]
        own = dict(attrs_of(runs[source_run])[keys.SETTINGS], train_seed=fit.params["train_seed"])
        assert attrs_of(fit)[keys.SETTINGS] == {**own, "keep_top": 50}
        trained.append((runs[source_run].number, fit.params["train_seed"]))
    assert sorted(trained) == sorted((t.number, s) for t in (best, second) for s in (8, 9))

    version = client.get_model_version("air-seeds-ensemble", "1")
    members = client.get_run(version.run_id).data.tags[keys.MEMBERS_TAG].split(",")
    assert len(members) == 4
    lead = next(t for t in complete if str(t.number) == members[0])  # read in the best's frame
    assert attrs_of(lead)[keys.FIT_OF] == attrs_of(best)[keys.RUN_ID]


def test_fresh_fits_take_trials_that_kept_no_weights(swept, capsys):
    source, _ = swept
    ranked = sorted(
        (t for t in source.trials if t.state.name == "COMPLETE"), key=lambda t: (t.value, t.number)
    )
    unkept = [t for t in ranked if keys.MODEL_ID not in attrs_of(t)]
    assert unkept and keys.WEIGHTS_URI not in attrs_of(unkept[0])  # keep_top: 0
    named = f"{ranked[0].number},{unkept[0].number}"
    assert main(["ensemble", "--study", "air", "--trials", named]) == 2  # its weights are gone
    assert f"trial {unkept[0].number} kept no weights" in capsys.readouterr().err

    # fresh fits train the configuration again: its recorded settings are enough
    assert main(["ensemble", "--study", "air", "--top", "3", "--seeds", "1"]) == 0
    numbers = "-".join(str(t.number) for t in ranked)
    fits = load_study(f"air-t{numbers}-seeds")
    trained = {attrs_of(t)[keys.FIT_OF] for t in fits.trials if t.state.name == "COMPLETE"}
    assert trained == {attrs_of(t)[keys.RUN_ID] for t in ranked}
    assert f"3 fresh fits of trials {numbers.replace('-', ', ')}" in capsys.readouterr().out


def test_mistakes_exit_2_and_create_nothing(swept, capsys):
    _, data = swept
    studies, runs = set(read_studies(resolve_storage(None))), _runs()
    cases = [
        (["--seeds", "1"], "--seeds 1: 1 fresh fit(s) of 1 trial(s); expected 2 to 50"),
        (["--seeds", "51"], "--seeds 51: expected an integer >= 1 and <= 50"),
        (["--seeds", "26", "--top", "2"], "--seeds 26: 52 fresh fit(s) of 2 trial(s)"),
        (["--seeds", "2", "--top", "0"], "--top 0: expected an integer >= 1"),
        (["--seeds", "2", "--trials", "0,99"], "trial(s) 99 of study 'air' did not complete"),
        (["--seeds", "2", "--combine", "vote"], "--combine 'vote'"),
    ]
    for extra, words in cases:
        assert main(["ensemble", "--study", "air", *extra]) == 2, extra
        assert words in capsys.readouterr().err
    data.write_text(data.read_text().replace("112", "113", 1))
    assert main(["ensemble", "--study", "air", "--seeds", "2"]) == 2
    assert "changed since the sweep" in capsys.readouterr().err
    assert set(read_studies(resolve_storage(None))) == studies
    assert _runs() == runs
