"""What a sweep will cost, said while it runs: during the first trial, when `--timeout` will
end the sweep after it; after each finished trial, the time left for the requested trials,
at the pace the finished trials ended (the pruned ones included, so the pruner's decisions so
far count). What the settings multiply is said before: tuner.study.workload."""

from __future__ import annotations

import statistics

import optuna

from tuner.config.options import MEDIAN_STARTUP as STARTUP


def time_left(finished: list[optuna.trial.FrozenTrial], target: int, parallel: int = 1) -> str:
    """`~4m10s left for 12 trials`: the trials still to finish at the study's pace
    (`seconds_per_trial`); "" before the first finishes."""
    left = target - len(finished)
    pace = seconds_per_trial(finished, parallel)
    if pace is None or left <= 0:
        return ""
    return f"~{clock(left * pace)} left for {left} trial(s)"


def seconds_per_trial(finished: list[optuna.trial.FrozenTrial], parallel: int = 1) -> float | None:
    """The study's pace since its first STARTUP trials ended (the pruner's start-up, when
    nothing is pruned, and the first trial's warm-up: both overstate what later trials
    cost): the time between their ends, so what runs between trials (sampling, recording)
    and every process working on the study count. Until two trials followed them, the
    median trial's duration shared by `parallel` processes."""
    ends = sorted(t.datetime_complete for t in finished if t.datetime_complete)
    if len(ends) >= STARTUP + 2:
        return (ends[-1] - ends[STARTUP - 1]).total_seconds() / (len(ends) - STARTUP)
    seconds = [t.duration.total_seconds() for t in finished if t.duration]
    return statistics.median(seconds) / max(1, parallel) if seconds else None


def first_trial_note(seconds_per_epoch: float, steps: int, timeout: float, spent: float) -> str:
    """During the first trial: the sweep's --timeout ends it after that trial (Optuna
    lets a running trial finish) when the trial alone outlasts what is left of it."""
    whole = seconds_per_epoch * steps
    if whole <= timeout - spent:
        return ""
    return (f"note: at {seconds_per_epoch:.2g} s an epoch, a trial takes about {clock(whole)} "
            f"({steps} epochs in all); --timeout {timeout:g} ends the sweep after this "
            f"first trial")  # fmt: skip


def clock(seconds: float) -> str:
    """3h05m, 4m10s, 12s."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
