"""Forecasting data: CSVs (wide or long) read and validated into in-memory series, where
each series' training, validation (per backtest fold) and test parts lie, and the space
fitted to the data (folds resolved, window lengths clipped)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tuner.contract.datafiles import NUMBER, Table, read_table, unfit_numbers
from tuner.errors import DataError
from tuner.tasks.forecasting.spec import BACKTESTS, SPEC
from tuner.training.folds import AUTO, auto_folds, fold_count, require_fixed

DEFAULTS: dict[str, Any] = SPEC.defaults
LONG_COLUMNS = ("unique_id", "ds", "y")
SEASON_BY_FREQ = {
    "M": 12,
    "MS": 12,
    "ME": 12,
    "Q": 4,
    "QS": 4,
    "QE": 4,
    "W": 52,
    "D": 7,
    "B": 5,
    "h": 24,
    "H": 24,
}


@dataclass(frozen=True)
class Series:
    uid: str
    dates: pd.DatetimeIndex
    values: np.ndarray  # float64, original units


@dataclass(frozen=True)
class SeriesSet:
    """Every series of a file, plus what the windows need to know about them."""

    path: str
    series: tuple[Series, ...]
    freq: str | None

    @property
    def min_length(self) -> int:
        return min(len(s.values) for s in self.series)

    def season_length(self) -> int:
        base = (self.freq or "").split("-")[0].lstrip("0123456789")
        return SEASON_BY_FREQ.get(base, 1)


def read_series(args: Mapping[str, Any]) -> SeriesSet:
    """Read `args['data']` (a CSV path or a DataFrame) as long (unique_id, ds, y) or wide
    (time column + targets)."""
    table = read_table(args["data"])
    frame = table.frame
    if set(LONG_COLUMNS) <= set(frame.columns):
        long = frame[list(LONG_COLUMNS)].assign(_row=frame.index)
    else:
        long = _wide_to_long(frame, table.name, args.get("time_col"), args.get("target"))
    series = tuple(
        _one_series(table, uid, part) for uid, part in long.groupby("unique_id", sort=False)
    )
    freqs = {pd.infer_freq(s.dates) if len(s.dates) >= 3 else None for s in series}
    return SeriesSet(table.name, series, freqs.pop() if len(freqs) == 1 else None)


def _wide_to_long(
    frame: pd.DataFrame, path: str, time_col: str | None, target: str | None
) -> pd.DataFrame:
    time_col = time_col or str(frame.columns[0])
    if time_col not in frame.columns:
        raise DataError(
            f"{path}: time column {time_col!r} not found; columns are "
            f"{', '.join(map(str, frame.columns))} (use --time-col)"
        )
    targets = target.split(",") if target else [c for c in frame.columns if c != time_col]
    missing = [name for name in targets if name not in frame.columns]
    if missing or not targets:
        raise DataError(
            f"{path}: target column {', '.join(missing) or '(none)'} not found; "
            f"expected long columns unique_id, ds, y or a time column plus "
            f"target columns (use --target)"
        )
    parts = [
        pd.DataFrame(
            {"unique_id": name, "ds": frame[time_col], "y": frame[name], "_row": frame.index}
        )
        for name in targets
    ]
    return pd.concat(parts, ignore_index=True)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value a message quotes (1e+308, not np.float64(...))."""
    return value.item() if isinstance(value, np.generic) else value


def _one_series(table: Table, uid: Any, part: pd.DataFrame) -> Series:
    path, rows = table.name, part["_row"]
    values = pd.to_numeric(part["y"], errors="coerce").to_numpy(dtype=np.float64)
    bad = unfit_numbers(values)
    if bad.any():
        first = int(np.argmax(bad))
        raise DataError(
            f"{path}: {table.where(int(rows.iloc[first]))}: series {uid!r} has value "
            f"{_plain(part['y'].iloc[first])!r}; expected {NUMBER}"
        )
    dates = pd.to_datetime(part["ds"], errors="coerce")
    if dates.isna().any():
        first = int(np.argmax(dates.isna().to_numpy()))
        raise DataError(
            f"{path}: {table.where(int(rows.iloc[first]))}: time value "
            f"{part['ds'].iloc[first]!r} is not a date; expected e.g. 1960-01-01"
        )
    steps = np.diff(dates.to_numpy().astype("datetime64[ns]").astype(np.int64))
    if (steps <= 0).any():
        first = int(np.argmax(steps <= 0)) + 1
        what = "repeats" if steps[first - 1] == 0 else "goes back in time after"
        raise DataError(
            f"{path}: {table.where(int(rows.iloc[first]))}: series {uid!r} time "
            f"{part['ds'].iloc[first]!r} {what} the previous row; expected "
            f"strictly increasing timestamps"
        )
    return Series(str(uid), pd.DatetimeIndex(dates), values)


# ---------------------------------------------------------------- splits and backtests


@dataclass(frozen=True)
class Split:
    """Where a series' parts lie: training before `val_start`, validation in
    [val_start, val_end), test from `test_start` on."""

    val_start: int
    val_end: int
    test_start: int


def split_points(length: int, settings: Mapping[str, Any], fold: int | None = 0) -> Split:
    """Fold k is the backtest whose validation window ends k * `step` steps before the test
    part (fold 0: the plain hold-out); fold None trains on everything before the test part
    (the refit), with no validation."""
    horizon = int(settings["horizon"])
    val = int(settings["val_size"]) or horizon
    test_start = length - (int(settings["test_size"]) or horizon)
    if fold is None:
        return Split(test_start, test_start, test_start)
    val_end = test_start - fold * (int(settings.get("step") or 0) or horizon)
    return Split(val_end - val, val_end, test_start)


def spans(split: Split, length: int) -> dict[str, tuple[int, int]]:
    """The steps whose values each part's windows forecast (training: everything before
    the validation window, so a backtest never trains on its own future)."""
    return {
        "train": (0, split.val_start),
        "val": (split.val_start, split.val_end),
        "test": (split.test_start, length),
    }


def fit_space(space: Any, data: SeriesSet) -> tuple[Any, list[str]]:
    """Resolve `folds` (0: backtests when validation is a handful of windows), then clip
    input_len to what the earliest backtest's training part allows, and say so."""
    require_fixed(space, ("folds", "step"))
    space, notes = _resolve_folds(space, data)
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
        f"{ends} steps before the test part ({windows} hold-out window(s) would choose "
        f"on noise); --set folds=1 keeps one hold-out"
    ]
