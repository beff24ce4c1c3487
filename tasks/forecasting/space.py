"""The forecasting space fitted to the series: what a space leaves out shaped by the data
(the horizon from the frequency, input windows from the horizon and the series' length),
backtest folds resolved, and windows clipped to what the shortest series allows. A space
or --set that names a setting wins."""

from __future__ import annotations

import dataclasses
from typing import Any

from tuner.config.space import ParamSpec
from tuner.errors import DataError
from tuner.tasks.forecasting.data import DEFAULTS, SeriesSet, split_points
from tuner.tasks.forecasting.spec import BACKTESTS
from tuner.training.folds import AUTO, auto_folds, fold_count, require_fixed

WINDOWS = (2, 6)  # input windows of 2 to 6 horizons: the airline's 24-72 months
LONGEST_HORIZON = 10  # yearly or integer steps: the longest default horizon
TRAINING = 2  # horizons of training targets the earliest backtest keeps, at least


def fit_space(space: Any, data: SeriesSet) -> tuple[Any, list[str]]:
    """Shape what the space leaves out by the data (horizon, input_len), resolve `folds`
    (0: backtests when validation is a handful of windows), then clip input_len to what
    the earliest backtest's training part allows, and say so."""
    require_fixed(space, ("folds", "step"))
    space, shaped = _horizon(space, data)
    space, windows = _input_len(space, data)
    space, folds = _resolve_folds(space, data)
    space, clipped = _clip_windows(space, data)
    return space, [_frequency_note(space, data), *data.notes, *shaped, *windows, *folds, *clipped]


def _clip_windows(space: Any, data: SeriesSet) -> tuple[Any, list[str]]:
    """input_len at most what the earliest backtest's training part allows; refused where
    even its least value does not fit."""
    notes: list[str] = []
    settings = {**DEFAULTS, **space.fixed}
    horizon, folds = int(settings["horizon"]), fold_count(settings)
    split = split_points(data.min_length, settings, folds - 1)
    longest = split.val_start - horizon
    spec = space.param("input_len")
    low = int(space.value_range("input_len", settings)[0])  # a range's low, the least choice
    if longest < max(1, low):
        backtests = f" and {folds} backtest windows" if folds > 1 else ""
        raise DataError(
            f"{data.path}: the shortest series has {data.min_length} values, too short for "
            f"input_len {low} + horizon {horizon} (+ {data.min_length - split.val_start} "
            f"validation and test steps{backtests}); expected at least "
            f"{data.min_length - longest + low} values or a smaller input_len / horizon"
            f"{' / folds' if folds > 1 else ''}"
        )
    if spec and spec.kind == "categorical":
        kept = tuple(c for c in spec.choices if c <= longest)
        if len(kept) < len(spec.choices):
            space = space.with_param(dataclasses.replace(spec, choices=kept))
            dropped = ", ".join(str(c) for c in spec.choices if c > longest)
            notes.append(
                f"input_len: choices {dropped} dropped: the longest window the shortest "
                f"series' training part allows is {longest}"
            )
    elif spec and spec.high > longest:
        space = space.with_param(dataclasses.replace(spec, high=longest))
        where = "the earliest backtest of " if folds > 1 else ""
        notes.append(
            f"input_len: high clipped from {spec.high} to {longest}, the longest "
            f"window {where}the shortest series' training part allows"
        )
    return space, notes


def _resolve_folds(space: Any, data: SeriesSet) -> tuple[Any, list[str]]:
    """`folds: 0` becomes BACKTESTS windows (as many as the shortest series allows) when
    the hold-out validates on fewer than AUTO_BELOW windows in all, else 1."""
    settings = {**DEFAULTS, **space.fixed}
    if int(settings["folds"]) != AUTO:
        return space, []
    horizon = int(settings["horizon"])
    val = int(settings["val_size"]) or horizon
    step = int(settings["step"]) or horizon
    windows = len(data.series) * max(1, val - horizon + 1)
    spec = space.param("input_len")
    low = int(spec.low if spec else settings["input_len"])
    room = split_points(data.min_length, settings).val_start - horizon - low
    folds = auto_folds(windows, BACKTESTS, 1 + max(0, room) // step)
    space = space.with_fixed({"folds": folds})
    if folds == 1:
        return space, []
    ends = ", ".join(str(k * step) for k in range(folds))
    return space, [
        f"folds: {folds} backtests per series, validating on the {val} steps that end "
        f"{ends} steps before the test part (a hold-out of {windows} window"
        f"{'s' * (windows > 1)} would choose on noise); --set folds=1 keeps one hold-out"
    ]


def _horizon(space: Any, data: SeriesSet) -> tuple[Any, list[str]]:
    """One season (13 weeks for weekly data); where no season says, the longest of
    1-LONGEST_HORIZON steps that leaves the backtests and a training part in the shortest
    series."""
    freq = data.freq
    if freq.horizon:
        what = "13 weeks" if freq.season == 52 else "one season"
        return space.from_data("horizon", freq.horizon, f"{what} of {freq.name} data")
    fits = [h for h in range(1, LONGEST_HORIZON + 1) if _history_holds(space, data, h)]
    horizon = fits[-1] if fits else 1
    why = (
        f"{freq.name}: the longest of 1-{LONGEST_HORIZON} steps that leaves "
        f"{_backtests(space)} backtest(s) and {WINDOWS[0] + TRAINING} horizons of training "
        f"in the shortest series ({data.min_length} values)"
    )
    return space.from_data("horizon", horizon, why)


def _backtests(space: Any) -> int:
    folds = int({**DEFAULTS, **space.fixed}["folds"])
    return BACKTESTS if folds == AUTO else folds


def _history_holds(space: Any, data: SeriesSet, horizon: int) -> bool:
    settings = {**DEFAULTS, **space.fixed, "horizon": horizon}
    split = split_points(data.min_length, settings, _backtests(space) - 1)
    return split.val_start >= (WINDOWS[0] + TRAINING) * horizon


def _input_len(space: Any, data: SeriesSet) -> tuple[Any, list[str]]:
    """2-6 horizons in steps of one (the airline: 24-72 months by 12), at most what the
    shortest series' training part allows."""
    settings = {**DEFAULTS, **space.fixed}
    horizon = int(settings["horizon"])
    longest = split_points(data.min_length, settings).val_start - horizon
    low, high = (min(max(1, longest), k * horizon) for k in WINDOWS)
    step = horizon if high - low >= horizon else None
    high = low + (high - low) // step * step if step else high
    spec = ParamSpec("input_len", "int", low=low, high=high, step=step)
    why = f"{WINDOWS[0]}-{WINDOWS[1]} horizons"
    if high < WINDOWS[1] * horizon:
        why += f", at most the {longest} steps the shortest series' training part holds"
    return space.from_data("input_len", spec, why, before="transform")


def _frequency_note(space: Any, data: SeriesSet) -> str:
    season = int({**DEFAULTS, **space.fixed}["season_length"])
    given = f"season_length {season}" if season else f"season {data.freq.season}"
    if not season and data.freq.season == 1:
        given += " (no calendar says one: --set season_length=N names it)"
    return f"frequency: {data.freq.name}; {given}"
