"""TUNER_MAX_TRIALS / _EPOCHS / _BATCHES cap a study (the docs test runs under them)."""

from __future__ import annotations

import pytest

from tuner.config.budget import capped_epochs, capped_trials
from tuner.config.space import ParamSpec, SearchSpace
from tuner.errors import UsageError

SPACE = SearchSpace("val_mae", "minimize", (ParamSpec("lr", "float", low=1e-3, high=1e-2),),
                    {"max_epochs": 60}, "space.yaml")  # fmt: skip


def test_unset_caps_nothing(monkeypatch):
    monkeypatch.delenv("TUNER_MAX_TRIALS", raising=False)
    monkeypatch.delenv("TUNER_MAX_EPOCHS", raising=False)
    assert capped_trials(30) == (30, [])
    assert capped_epochs(SPACE, 60) == (SPACE, [])


def test_caps_pin_trials_and_epochs_and_say_so(monkeypatch):
    monkeypatch.setenv("TUNER_MAX_TRIALS", "2")
    monkeypatch.setenv("TUNER_MAX_EPOCHS", "1")
    trials, notes = capped_trials(30)
    assert trials == 2 and "caps this study at 2 trials (asked: 30)" in notes[0]
    assert capped_trials(1) == (1, [])
    space, notes = capped_epochs(SPACE, 60)
    assert space.fixed["max_epochs"] == 1 and notes
    searched = SPACE.with_param(ParamSpec("max_epochs", "int", low=5, high=20))
    assert capped_epochs(searched, 60)[0].param("max_epochs") is None  # pinned, not searched
    short = SearchSpace("val_mae", "minimize", (), {"max_epochs": 1}, "s.yaml")
    assert capped_epochs(short, 60) == (short, [])


def test_a_bad_cap_is_one_line(monkeypatch):
    monkeypatch.setenv("TUNER_MAX_TRIALS", "lots")
    with pytest.raises(UsageError, match="TUNER_MAX_TRIALS='lots': expected an integer >= 1"):
        capped_trials(30)


def test_a_batch_cap_limits_each_epoch_and_says_so(monkeypatch):
    from tuner.config.budget import batch_cap

    monkeypatch.delenv("TUNER_MAX_BATCHES", raising=False)
    assert batch_cap() == (None, [])
    monkeypatch.setenv("TUNER_MAX_BATCHES", "4")
    assert batch_cap() == (4, ["TUNER_MAX_BATCHES=4 caps each epoch at 4 batches"])
    monkeypatch.setenv("TUNER_MAX_BATCHES", "0")
    with pytest.raises(UsageError, match="TUNER_MAX_BATCHES='0'"):
        batch_cap()
