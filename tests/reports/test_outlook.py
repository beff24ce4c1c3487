"""What a sweep says it will cost: the notes before the first trial (folds, an idle pruner),
the time left after each finished trial, and the first trial against --timeout."""

from __future__ import annotations

import pytest

from tuner.cli import main
from tuner.reports.outlook import clock, first_trial_note, seconds_per_trial
from tuner.study.workload import workload_notes

IDLE, STARTUP, FOLDS = "has nothing to decide", "prunes nothing in", "each trial trains"


@pytest.mark.parametrize(
    ("epochs", "folds", "pruner", "trials", "said"),
    [
        (3, 1, "median", 20, [IDLE]),  # it decides from epoch 5 on
        (5, 1, "median", 20, [IDLE]),  # at the last step the trial ends anyway
        (6, 1, "median", 20, []),
        (3, 4, "median", 20, [FOLDS]),  # 12 steps: it decides at 5 and 10
        (20, 1, "median", 3, [STARTUP]),
        (1, 1, "hyperband", 20, [IDLE]),
        (2, 1, "hyperband", 20, []),
        (3, 1, "none", 20, []),
    ],
)
def test_settings_that_multiply_the_work_or_idle_the_pruner_are_said(
    epochs, folds, pruner, trials, said
):
    notes = workload_notes({"max_epochs": epochs, "folds": folds}, pruner, trials)
    assert [next(k for k in (IDLE, STARTUP, FOLDS) if k in n) for n in notes] == said
    if FOLDS in said:
        assert notes[0].startswith(f"{folds} folds: each trial trains {folds} models")


def test_the_first_trial_against_the_timeout():
    assert first_trial_note(4.0, 100, timeout=300, spent=5) == (
        "note: at 4 s an epoch, a trial takes about 6m40s (100 epochs in all); --timeout 300 "
        "ends the sweep after this first trial"
    )
    assert first_trial_note(2.0, 100, timeout=600, spent=5) == ""
    assert [clock(s) for s in (12.4, 250, 11100)] == ["12s", "4m10s", "3h05m"]


def _trials(*seconds: float, gap: float = 0.5) -> list:
    """Trials run one after another, each lasting its `seconds`, `gap` apart."""
    import datetime

    from optuna.distributions import FloatDistribution
    from optuna.trial import FrozenTrial, TrialState

    start, trials = datetime.datetime(2026, 1, 1), []
    for k, s in enumerate(seconds):
        end = start + datetime.timedelta(seconds=s)
        trials.append(FrozenTrial(number=k, state=TrialState.COMPLETE, value=1.0,
                                  datetime_start=start, datetime_complete=end,
                                  params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
                                  user_attrs={}, system_attrs={}, intermediate_values={},
                                  trial_id=k))  # fmt: skip
        start = end + datetime.timedelta(seconds=gap)
    return trials


def test_the_pace_leaves_out_the_pruners_start_up_and_counts_the_time_between_trials():
    assert seconds_per_trial([]) is None
    assert seconds_per_trial(_trials(9, 1, 5, 2)) == 3.5  # too few after the start-up: median
    assert seconds_per_trial(_trials(9, 1, 5, 2), parallel=2) == 1.75
    # trials 3 and 4 (2 s, 4 s) ended 2.5 s and 4.5 s after trial 2: 3.5 s a trial
    assert seconds_per_trial(_trials(9, 1, 5, 2, 4)) == 3.5


def test_a_sweep_says_its_idle_pruner_up_front_and_the_time_left_after_each_trial(
    tiny_space, capsys
):
    argv = ["search", "--task", "forecasting", "--space", str(tiny_space), "--trials", "3",
            "--study", "o"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "note: --pruner median has nothing to decide: a trial reports 2 step(s)" in out
    lines = [line for line in out.splitlines() if line.startswith("trial ")]
    assert len(lines) == 3
    assert "left for 2 trial(s)" in lines[0] and "left for 1 trial(s)" in lines[1]
    assert "left for" not in lines[2]
    assert main([*argv[:-1], "o2", "--pruner", "none"]) == 0
    assert "note: --pruner" not in capsys.readouterr().out
