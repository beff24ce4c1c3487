"""What a sweep will cost, said while it runs: during the first trial, when `--timeout` will
end the sweep after it; after each finished trial, the time left for the requested trials,
from the finished trials' durations (the pruned ones included, so the pruner's decisions so
far count). What the settings multiply is said before: tuner.study.workload."""

from __future__ import annotations

import statistics

import optuna

from tuner.config.options import MEDIAN_STARTUP as STARTUP


def time_left(finished: list[optuna.trial.FrozenTrial], target: int, parallel: int = 1) -> str:
    """`~4m10s left for 12 trials`: the trials still to finish times a typical `finished`
    trial's duration (`typical_seconds`), shared by `parallel` processes; "" before the
    first finishes."""
    left = target - len(finished)
    typical = typical_seconds(finished)
    if typical is None or left <= 0:
        return ""
    return f"~{clock(left * typical / max(1, parallel))} left for {left} trial(s)"


def typical_seconds(finished: list[optuna.trial.FrozenTrial]) -> float | None:
    """The mean duration of the trials after the first STARTUP (the pruner's start-up, when
    nothing is pruned, and the first trial's warm-up: both overstate what later trials
    cost), once two or more followed them; before that, the median of all."""
    ordered = sorted((t for t in finished if t.duration), key=lambda t: t.number)
    seconds = [t.duration.total_seconds() for t in ordered]
    if len(seconds) >= STARTUP + 2:
        return statistics.fmean(seconds[STARTUP:])
    return statistics.median(seconds) if seconds else None


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
