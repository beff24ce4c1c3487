"""Studies that build on earlier ones: a warm start first runs the best configurations of
earlier studies of the same task, fitted to its own space; a study continued with another
space keeps its trials and learns from those that fit."""

from __future__ import annotations

import pytest
import yaml

import tuner
from tests.conftest import TINY_SPACE
from tuner.config import keys
from tuner.config.space_file import parse_space
from tuner.config.trial_attrs import of as attrs_of
from tuner.contract.registry import get_spec
from tuner.errors import UsageError
from tuner.reports.ranking import ranked_trials
from tuner.storage.locations import resolve_storage
from tuner.storage.studies import load_study, read_studies
from tuner.study.continued import fits
from tuner.study.warmstart import fit_params

# hidden_size narrower than the source's (4-16), transform offers one choice fewer
NEW_SPACE = TINY_SPACE.replace("low: 4, high: 16", "low: 8, high: 12").replace(
    "choices: [none, log]", "choices: [none]"
)


def _search(space, study, trials, quiet=True, **options):
    return tuner.search(
        "forecasting", trials=trials, space=str(space), study=study, pruner="none",
        quiet=quiet, **options,
    )  # fmt: skip


def test_a_warm_started_study_first_runs_the_sources_best_fitted_to_its_space(
    workdir, tiny_space, capsys
):
    _search(tiny_space, "source", 5, seed=3)
    best = ranked_trials(load_study("source"))[:2]
    new_space = workdir / "new.yaml"
    new_space.write_text(NEW_SPACE)
    capsys.readouterr()

    _search(new_space, "target", 4, quiet=False, warm_start="source", warm_start_top=2)
    out = capsys.readouterr().out
    trials = load_study("target").trials
    space = parse_space(yaml.safe_load(NEW_SPACE), get_spec("forecasting"), "new.yaml")
    for trial, source in zip(trials[:2], best, strict=True):
        wanted, _ = fit_params(source.params, space)
        assert {k: trial.params[k] for k in wanted} == wanted
        assert 8 <= trial.params["hidden_size"] <= 12 and trial.params["transform"] == "none"
        assert attrs_of(trial)[keys.WARM_START] == f"source#{source.number}"
        assert f"queued trial source#{source.number}" in out
    assert all(keys.WARM_START not in attrs_of(t) for t in trials[2:])
    assert load_study("target").user_attrs[keys.WARM_STARTED_FROM] == ["source"]
    if any(t.params["hidden_size"] not in range(8, 13) for t in best):
        assert "clipped to" in out


def test_a_new_study_first_runs_the_trial_its_space_names(workdir, tiny_space, capsys):
    space = workdir / "first.yaml"
    space.write_text(TINY_SPACE + "first: {hidden_size: 5, lr: 2.0e-3, transform: log}\n")
    _search(space, "first", 3, quiet=False, seed=3)  # its notes are printed
    trials = load_study("first").trials
    assert trials[0].params == {"hidden_size": 5, "lr": 2.0e-3, "transform": "log"}
    assert attrs_of(trials[0])[keys.FIRST_OF_SPACE] == str(space)
    assert all(keys.FIRST_OF_SPACE not in attrs_of(t) for t in trials[1:])
    assert "note: first trial: hidden_size 5, lr 0.002, transform log" in capsys.readouterr().out
    # it names every searched param: the sampler's draws after it are a plain study's
    _search(tiny_space, "plain", 2, seed=3)
    assert [t.params for t in trials[1:]] == [t.params for t in load_study("plain").trials]

    _search(space, "first", 5, seed=3)  # resumed: it ran once, it is not queued again
    trials = load_study("first").trials
    assert len(trials) == 5 and sum(keys.FIRST_OF_SPACE in attrs_of(t) for t in trials) == 1

    _search(space, "warm", 2, warm_start="first", warm_start_top=1)  # a warm start leads
    warm = load_study("warm").trials
    assert keys.WARM_START in attrs_of(warm[0])
    assert all(keys.FIRST_OF_SPACE not in attrs_of(t) for t in warm)


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


def test_a_study_continued_with_a_narrower_space_learns_from_the_trials_that_fit(
    workdir, tiny_space
):
    _search(tiny_space, "grown", 6, seed=1)
    before = load_study("grown").trials
    assert any(not 8 <= t.params["hidden_size"] <= 12 for t in before)  # some no longer fit
    narrower = workdir / "narrower.yaml"
    narrower.write_text(TINY_SPACE.replace("low: 4, high: 16", "low: 8, high: 12"))
    _search(narrower, "grown", 10, allow_changes=True)
    trials = load_study("grown").trials
    assert len(trials) == 10 and trials[:6] == before  # the earlier trials are kept
    assert all(8 <= t.params["hidden_size"] <= 12 for t in trials[6:])
    space = {s.name: s.distribution() for s in parse_space(yaml.safe_load(narrower.read_text()),
             get_spec("forecasting"), "narrower.yaml").params}  # fmt: skip
    assert [fits(t, space) for t in before] == [8 <= t.params["hidden_size"] <= 12 for t in before]


def test_changing_a_categorical_params_choices_is_refused_even_with_allow_changes(
    workdir, tiny_space
):
    _search(tiny_space, "grown", 1)
    fewer = workdir / "fewer.yaml"
    fewer.write_text(NEW_SPACE)
    with pytest.raises(UsageError, match=r"params.transform: choices \['none', 'log'\] -> "):
        _search(fewer, "grown", 2, allow_changes=True)
    assert len(load_study("grown").trials) == 1
