"""Resuming and extending a study: new params (never the first run's again), the same
settings (or an explicit --allow-changes), and honest records of what did not run."""

from __future__ import annotations

import optuna
import pytest

import tuner
from tests.conftest import search_cli
from tuner.config.keys import SKIPPED
from tuner.errors import UsageError
from tuner.reports.ranking import state_counts, trials_table
from tuner.storage.studies import load_study

STUDY = "forecasting-air_passengers"


def _params(study: optuna.Study) -> list[tuple]:
    return [tuple(sorted(t.params.items())) for t in study.trials]


def test_a_resumed_study_with_the_same_seed_samples_new_params(tiny_space):
    assert search_cli(tiny_space, 2, "--pruner", "none", "--quiet") == 0
    first = _params(load_study(STUDY))
    assert search_cli(tiny_space, 5, "--pruner", "none", "--quiet") == 0
    later = _params(load_study(STUDY))[2:]
    assert len(later) == 3 and not set(later) & set(first)  # lr is a float: equal = repeated
    assert len(set(later)) == 3


def test_a_fresh_study_is_reproducible_from_its_seed(tiny_space):
    for name in ("one", "two"):
        tuner.search(
            "forecasting", trials=2, space=str(tiny_space), study=name, pruner="none", quiet=True
        )
    assert _params(load_study("one")) == _params(load_study("two"))


def test_resuming_with_other_settings_is_refused_unless_allowed(tiny_space):
    options = dict(space=str(tiny_space), pruner="none", quiet=True)
    first = tuner.search("forecasting", trials=1, **options)
    with pytest.raises(UsageError, match=r"other settings \(fixed.max_epochs: 2 -> 3\)"):
        tuner.search("forecasting", trials=2, overrides={"max_epochs": 3}, **options)
    assert len(load_study(STUDY).trials) == 1  # nothing ran, the older result not returned
    result = tuner.search(
        "forecasting", trials=2, overrides={"max_epochs": 3}, allow_changes=True, **options
    )
    assert result.counts["complete"] == 2 and first.study == result.study
    # what may differ freely: the seed, the total, the sampler, the timeout
    again = tuner.search(
        "forecasting", trials=3, overrides={"max_epochs": 3}, seed=5, timeout=600, **options
    )
    assert again.counts["complete"] == 3


def test_api_arguments_are_checked_like_flags(tiny_space):
    with pytest.raises(UsageError, match=r"--timeout -1: expected a number > 0"):
        tuner.search("forecasting", trials=2, space=str(tiny_space), timeout=-1)
    with pytest.raises(UsageError, match=r"--set max_epochs: expected an integer >= 1"):
        tuner.search("forecasting", space=str(tiny_space), overrides={"max_epochs": 0})
    with pytest.raises(UsageError, match=r"--trials '3': expected an integer"):
        tuner.search("forecasting", trials="3", space=str(tiny_space))
    assert not (tiny_space.parent / "mlruns").exists()


def test_a_skipped_trial_is_no_failure_and_integer_params_stay_integers(workdir, capsys):
    study = optuna.create_study(storage=f"sqlite:///{workdir / 'o.db'}", study_name="s")
    study.optimize(lambda t: t.suggest_int("hidden_size", 4, 64) + t.suggest_float("lr", 0, 1), 2)
    skipped = study.ask()
    skipped.set_user_attr(SKIPPED, True)
    study.tell(skipped, state=optuna.trial.TrialState.FAIL)
    assert state_counts(study) == {"complete": 2, "pruned": 0, "fail": 0, "interrupted": 0}
    table = trials_table(study)
    assert list(table["state"]) == ["COMPLETE", "COMPLETE", "SKIPPED"]
    assert str(table["hidden_size"].dtype) == "Int64"
    csv = table.to_csv(index=False).splitlines()
    assert csv[1].split(",")[4] == str(study.trials[0].params["hidden_size"])  # 17, not 17.0


def test_cmaes_sampler_runs(tiny_space):
    result = tuner.search(
        "forecasting", trials=2, space=str(tiny_space), sampler="cmaes", pruner="none", quiet=True
    )
    assert result.counts == {"complete": 2, "pruned": 0, "fail": 0, "interrupted": 0}
