"""Warm starts: a new study first runs the best configurations of earlier studies of the same
task, fitted to its own space, then its sampler takes over."""

from __future__ import annotations

import pytest
import yaml

import tuner
from tests.conftest import TINY_SPACE
from tuner import keys
from tuner.errors import UsageError
from tuner.registry import get_spec
from tuner.space import parse_space
from tuner.stores import load_study, read_studies, resolve_storage
from tuner.warmstart import best_trials, fit_params

# hidden_size narrower than the source's (4-16), transform offers one choice fewer
NEW_SPACE = TINY_SPACE.replace("low: 4, high: 16", "low: 8, high: 12").replace(
    "choices: [none, log]", "choices: [none]"
)


def _search(space, study, trials, **options):
    return tuner.search(
        "forecasting", trials=trials, space=str(space), study=study, pruner="none",
        quiet=True, **options,
    )  # fmt: skip


def test_a_warm_started_study_first_runs_the_sources_best_fitted_to_its_space(
    workdir, tiny_space, capsys
):
    _search(tiny_space, "source", 5, seed=3)
    best = best_trials(load_study("source"), 2)
    new_space = workdir / "new.yaml"
    new_space.write_text(NEW_SPACE)
    capsys.readouterr()

    _search(new_space, "target", 4, warm_start="source", warm_start_top=2)
    out = capsys.readouterr().out
    trials = load_study("target").trials
    space = parse_space(yaml.safe_load(NEW_SPACE), get_spec("forecasting"), "new.yaml")
    for trial, source in zip(trials[:2], best, strict=True):
        wanted, _ = fit_params(source.params, space)
        assert {k: trial.params[k] for k in wanted} == wanted
        assert 8 <= trial.params["hidden_size"] <= 12 and trial.params["transform"] == "none"
        assert trial.user_attrs[keys.WARM_START] == f"source#{source.number}"
        assert f"queued trial source#{source.number}" in out
    assert all(keys.WARM_START not in t.user_attrs for t in trials[2:])
    assert load_study("target").user_attrs[keys.WARM_STARTED_FROM] == ["source"]
    if any(t.params["hidden_size"] not in range(8, 13) for t in best):
        assert "clipped to" in out


def test_fit_params_clips_snaps_and_drops():
    space = parse_space(
        {
            "params": {
                "hidden_size": {"type": "int", "low": 8, "high": 64, "log": True},
                "input_len": {"type": "int", "low": 12, "high": 36, "step": 12},
                "transform": {"type": "categorical", "choices": ["none"]},
            }
        },
        get_spec("forecasting"),
        "s.yaml",
    )
    params, notes = fit_params(
        {"hidden_size": 200, "input_len": 25, "transform": "log", "lr": 0.01}, space
    )
    assert params == {"hidden_size": 64, "input_len": 24}
    assert notes == [
        "hidden_size=200 clipped to 64",
        "input_len=25 clipped to 24",
        "transform='log' is not a choice now: the sampler picks it",
    ]


@pytest.mark.parametrize(
    "source, match",
    [("missing", "no such study in this storage"), ("target", "cannot warm-start from itself")],
)
def test_a_bad_warm_start_source_is_refused_before_anything_is_made(
    workdir, tiny_space, source, match
):
    _search(tiny_space, "other", 1)
    with pytest.raises(UsageError, match=match):
        _search(tiny_space, "target", 1, warm_start=source)
    assert "target" not in read_studies(resolve_storage(None))
