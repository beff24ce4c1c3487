"""Forecasting data: CSVs (wide or long) read and validated into in-memory series, and
where each series' training, validation (per backtest fold) and test parts lie."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tuner.contract.datafiles import NUMBER, Table, read_table, unfit_numbers
from tuner.errors import DataError, some_of
from tuner.tasks.forecasting.spec import SPEC
from tuner.tasks.forecasting.timeaxis import Frequency, frequency_of, read_times

DEFAULTS: dict[str, Any] = SPEC.defaults
LONG_COLUMNS = ("unique_id", "ds", "y")


@dataclass(frozen=True)
class Series:
    uid: str
    times: pd.Index  # dates (a DatetimeIndex) or integer steps, as the file wrote them
    values: np.ndarray  # float64, original units


@dataclass(frozen=True)
class SeriesSet:
    """Every series of a file, plus what the windows need to know about them."""

    path: str
    series: tuple[Series, ...]
    freq: Frequency = Frequency()
    notes: tuple[str, ...] = ()  # how the file was read, for the study header

    @property
    def min_length(self) -> int:
        return min(len(s.values) for s in self.series)

    def season_length(self) -> int:
        return self.freq.season


def read_series(args: Mapping[str, Any]) -> SeriesSet:
    """Read `args['data']` (a CSV path or a DataFrame) as long (unique_id, ds, y) or wide
    (time column + targets); `args['date_format']` reads the dates by a strftime format."""
    table = read_table(args["data"])
    frame = table.frame
    if set(LONG_COLUMNS) <= set(frame.columns):
        long = frame[list(LONG_COLUMNS)].assign(_row=frame.index)
    else:
        long = _wide_to_long(frame, table.name, args.get("time_col"), args.get("target"))
    rows = long["_row"].to_numpy()
    times, reading = read_times(
        long["ds"], args.get("date_format"), lambda i: table.where(int(rows[i])), table.name
    )
    long = long.assign(time=times.to_numpy())
    read = [_one_series(table, uid, part) for uid, part in long.groupby("unique_id", sort=False)]
    series = tuple(one for one, _ in read)
    freq = frequency_of([s.times for s in series])
    notes = [reading] if reading else []
    unsorted = [one.uid for one, was_unsorted in read if was_unsorted]
    if unsorted:
        notes.append(
            f"rows sorted by time in {len(unsorted)} series ({some_of(unsorted)}): the file "
            f"has them out of order"
        )
    return SeriesSet(table.name, series, freq, tuple(notes))


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


def _one_series(table: Table, uid: Any, part: pd.DataFrame) -> tuple[Series, bool]:
    """One series, its rows in time order (and whether the file had them out of order)."""
    path = table.name
    unsorted = not part["time"].is_monotonic_increasing
    part = part.sort_values("time", kind="stable") if unsorted else part
    repeats = part["time"].duplicated().to_numpy()
    if repeats.any():
        first = int(repeats.argmax())
        raise DataError(
            f"{path}: {table.where(int(part['_row'].iloc[first]))}: series {uid!r} time "
            f"{part['ds'].iloc[first]!r} repeats an earlier row; expected one value per "
            f"time step"
        )
    values = pd.to_numeric(part["y"], errors="coerce").to_numpy(dtype=np.float64)
    bad = unfit_numbers(values)
    if bad.any():
        first = int(np.argmax(bad))
        raise DataError(
            f"{path}: {table.where(int(part['_row'].iloc[first]))}: series {uid!r} has value "
            f"{_plain(part['y'].iloc[first])!r}; expected {NUMBER}"
        )
    return Series(str(uid), pd.Index(part["time"]), values), unsorted


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
