"""A forecasting file's time column, read as the user wrote it: integer steps stay integers;
dates are read one way for the whole file (by --date-format, or by the one reading that fits
every row); the frequency names the season and the default horizon."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from tuner.errors import DataError

# pandas frequency (its base, without multiple or anchor) -> (name, season, default horizon)
KNOWN = {
    "h": ("hourly", 24, 24),
    "D": ("daily", 7, 7),
    "B": ("business-daily", 5, 5),
    "W": ("weekly", 52, 13),
    **dict.fromkeys(("M", "MS", "ME", "BM", "BMS", "BME"), ("monthly", 12, 12)),
    **dict.fromkeys(("Q", "QS", "QE", "BQ", "BQS", "BQE"), ("quarterly", 4, 4)),
    **dict.fromkeys(("Y", "YS", "YE", "A", "AS", "BA", "BY", "BYS", "BYE"), ("yearly", 1, 0)),
}
EXAMPLE = pd.Timestamp("2023-01-31")  # how a message shows the form a format expects


@dataclass(frozen=True)
class Frequency:
    """The step between a file's rows: a pandas frequency ('D', 'MS', 'W-SUN'), an integer
    step, or neither (irregular or mixed)."""

    code: str | None = None
    step: int | None = None

    @property
    def _known(self) -> tuple[str, int, int] | None:
        base = (self.code or "").split("-")[0]
        return KNOWN.get("h" if base == "H" else base)

    @property
    def name(self) -> str:
        if self.step is not None:
            return f"integer steps of {self.step}"
        if self.code is None:
            return "irregular"
        known = self._known
        return f"{known[0]} ({self.code})" if known else f"every {self.code}"

    @property
    def season(self) -> int:
        """Steps per season (1: none known): seasonal naive's period, the windows' unit."""
        return self._known[1] if self._known else 1

    @property
    def horizon(self) -> int:
        """One season, 13 weeks for weekly data; 0 where no season says (yearly, integer
        steps, other frequencies): the history then decides."""
        return self._known[2] if self._known else 0


def frequency_of(times: Sequence[pd.Index]) -> Frequency:
    """The frequency every series shares (integer steps: the same step), else irregular."""
    found = {_one_frequency(t) for t in times}
    return found.pop() if len(found) == 1 else Frequency()


def _one_frequency(times: pd.Index) -> Frequency:
    if len(times) < 3:
        return Frequency()
    if not isinstance(times, pd.DatetimeIndex):
        steps = np.unique(np.diff(times.to_numpy()))
        return Frequency(step=int(steps[0])) if len(steps) == 1 else Frequency()
    return Frequency(code=pd.infer_freq(times))


def future(times: pd.Index, freq: Frequency, horizon: int) -> pd.Index:
    """The `horizon` steps after a series' last time, in the series' own kind of time."""
    if not isinstance(times, pd.DatetimeIndex):
        step = freq.step or int(times[-1] - times[-2])
        return pd.Index(times[-1] + step * np.arange(1, horizon + 1))
    step = freq.code or pd.infer_freq(times) or (times[-1] - times[-2])
    return pd.date_range(times[-1], periods=horizon + 1, freq=step)[1:]


def read_times(
    column: pd.Series, date_format: str | None, where: Callable[[int], str], path: str
) -> tuple[pd.Series, str | None]:
    """The time column as dates or integers, and a note when the dates could be read two
    ways and only one fits every row (for the study header).

    Raises:
        DataError: a value that is not a date (in the column's one form) or an integer, or
            dates that read both day-first and month-first in every row.
    """
    if date_format:
        return _dated(column, date_format, where, path, "--date-format"), None
    if pd.api.types.is_datetime64_any_dtype(column):
        return column, None
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return _integers(column, where, path), None
    text = column.astype(str)
    readings = _readings(text.iloc[0])
    if not readings:
        return _dated(text, None, where, path, "the column"), None
    parsed = {form: _parse(text, form) for form in readings}
    fits = [form for form in readings if not parsed[form].isna().any()]
    if len(fits) == 2:
        a, b = (parsed[form] for form in fits)
        row = int((a != b).to_numpy().argmax())
        raise DataError(
            f"{path}: every date reads both month-first ({fits[0]}) and day-first "
            f"({fits[1]}), e.g. {text.iloc[row]!r} as {a.iloc[row]:%Y-%m-%d} or "
            f"{b.iloc[row]:%Y-%m-%d}; expected --date-format {fits[0]!r} or {fits[1]!r}"
        )
    if fits:
        chosen = len(readings) == 2
        return parsed[fits[0]], (f"dates read as {fits[0]}: the one reading that fits every "
                                 f"row" if chosen else None)  # fmt: skip
    furthest = max(readings, key=lambda form: int(parsed[form].isna().to_numpy().argmax()))
    return _dated(text, furthest, where, path, "the rows before it"), None


def _readings(first: str) -> list[str]:
    """The formats the first value can be read by: month-first and day-first where they
    differ (a year-first date such as 2023-01-05 is read one way)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        month_first = guess_datetime_format(first)
        day_first = guess_datetime_format(first, dayfirst=True)
    if month_first and (month_first.startswith("%Y") or month_first == day_first):
        return [month_first]
    return [form for form in (month_first, day_first) if form]


def _parse(text: pd.Series, form: str | None) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas' per-element fallback note
        return pd.to_datetime(text, format=form, errors="coerce")


def _dated(
    column: pd.Series, form: str | None, where: Callable[[int], str], path: str, by: str
) -> pd.Series:
    parsed = _parse(column.astype(str), form)
    if parsed.isna().any():
        row = int(parsed.isna().to_numpy().argmax())
        shape = f"in the form {by} uses ({form}, e.g. {EXAMPLE.strftime(form)})" if form else ""
        raise DataError(
            f"{path}: {where(row)}: time value {column.iloc[row]!r} is not a date "
            f"{shape or 'or an integer step'}; expected one form for the whole column "
            f"(e.g. 2023-01-31) or --date-format"
        )
    return parsed


def _integers(column: pd.Series, where: Callable[[int], str], path: str) -> pd.Series:
    values = column.to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) > 2**53)
    if bad.any():
        row = int(bad.argmax())
        raise DataError(
            f"{path}: {where(row)}: time value {column.iloc[row]!r} is neither a date nor "
            f"an integer step; expected one kind for the whole column"
        )
    return pd.Series(values.astype(np.int64), index=column.index)
