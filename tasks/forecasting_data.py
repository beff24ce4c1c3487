"""Reading and validating forecasting CSVs (wide or long) into in-memory series."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tuner.datafiles import Table, read_table
from tuner.errors import DataError

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


def _one_series(table: Table, uid: Any, part: pd.DataFrame) -> Series:
    path, rows = table.name, part["_row"]
    values = pd.to_numeric(part["y"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.argmax(bad))
        raise DataError(
            f"{path}: {table.where(int(rows.iloc[first]))}: series {uid!r} has value "
            f"{part['y'].iloc[first]!r}; expected a finite number"
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
