"""A forecasting file's time column, read as the user wrote it: integer steps stay integers;
dates are read one way for the whole file (by --date-format, or by the one reading that fits
every row); the frequency names the season and the default horizon."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from tuner.errors import DataError, UsageError

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
    return Frequency(code=inferred(times))


def inferred(times: pd.DatetimeIndex) -> str | None:
    """pandas' inferred frequency as its code ("MS", "D"); pandas 3.1 warns that a later
    version returns an offset, whose `freqstr` is the same code."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        found = pd.infer_freq(times)
    return getattr(found, "freqstr", found)


def future(times: pd.Index, freq: Frequency, horizon: int) -> pd.Index:
    """The `horizon` steps after a series' last time, in the series' own kind of time."""
    if not isinstance(times, pd.DatetimeIndex):
        step = freq.step or int(times[-1] - times[-2])
        return pd.Index(times[-1] + step * np.arange(1, horizon + 1))
    step = freq.code or inferred(times) or (times[-1] - times[-2])
    return pd.date_range(times[-1], periods=horizon + 1, freq=step)[1:]


def read_times(
    column: pd.Series, date_format: str | None, where: Callable[[int], str], path: str
) -> tuple[pd.Series, str | None]:
    """The time column as dates or integers, and a note on how dates were read where the
    order of day and month matters (for the study header).

    Raises:
        UsageError: a --date-format without strftime codes or with an unknown one, or given
            for a column of integer steps.
        DataError: a value that is not a date (in the column's one form) or an integer, or
            dates that read both day-first and month-first in every row.
    """
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if date_format:
        _check_format(date_format, path, numeric)
        return _dated(column, date_format, where, path, "--date-format"), (
            f"dates read as {date_format} (--date-format)"
        )
    if pd.api.types.is_datetime64_any_dtype(column):
        return column, None
    if numeric:
        return _integers(column, where, path), None
    text = column.astype(str)
    readings = _readings(text.iloc[0])
    if not readings:
        return _dated(text, None, where, path, "the column"), None
    parsed = {form: _parse(text, form) for form in readings}
    fits = [form for form in readings if not parsed[form].isna().any()]
    if len(fits) == 2:
        raise _read_both_ways(text, [parsed[form] for form in fits], fits, path)
    if fits:
        ordered = not fits[0].startswith("%Y")  # day and month could trade places
        return parsed[fits[0]], (f"dates read as {fits[0]}: the one reading that fits every "
                                 f"row" if ordered else None)  # fmt: skip
    furthest = max(readings, key=lambda form: int(parsed[form].isna().to_numpy().argmax()))
    return _dated(text, furthest, where, path, "the rows before it"), None


def _read_both_ways(
    text: pd.Series, readings: list[pd.Series], forms: list[str], path: str
) -> DataError:
    a, b = readings
    row = int((a != b).to_numpy().argmax())
    return DataError(
        f"{path}: every date reads both month-first ({forms[0]}) and day-first "
        f"({forms[1]}), e.g. {text.iloc[row]!r} as {a.iloc[row]:%Y-%m-%d} or "
        f"{b.iloc[row]:%Y-%m-%d}; expected --date-format {forms[0]!r} or {forms[1]!r}"
    )


def _check_format(form: str, path: str, numeric: bool) -> None:
    """A --date-format pandas can use, for a column of dates."""
    if numeric:
        raise UsageError(
            f"--date-format {form!r}: {path}'s time column holds integer steps, not dates; "
            f"expected no --date-format for it"
        )
    if "%" not in form:
        raise UsageError(
            f"--date-format {form!r}: no strftime codes; expected e.g. %d/%m/%Y (day first) "
            f"or %m/%d/%Y (month first)"
        )
    try:
        pd.to_datetime(pd.Series([EXAMPLE.strftime(form)]), format=form)
    except ValueError as exc:
        raise UsageError(
            f"--date-format {form!r}: {str(exc).splitlines()[0]}; expected strftime codes "
            f"such as %d/%m/%Y"
        ) from None


TWO_DIGIT_YEAR = re.compile(r"^\d{1,2}([/.\-])\d{1,2}\1\d{2}$")


def _readings(first: str) -> list[str]:
    """The formats the first value can be read by: month-first and day-first where they
    differ (a year-first date such as 2023-01-05 is read one way; pandas guesses no form
    for a two-digit year, 13/01/23, so both orders are tried)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        month_first = guess_datetime_format(first)
        day_first = guess_datetime_format(first, dayfirst=True)
    if month_first and (month_first.startswith("%Y") or month_first == day_first):
        return [month_first]
    found = TWO_DIGIT_YEAR.match(first.strip())
    if not (month_first or day_first) and found:
        sep = found.group(1)
        return [f"%m{sep}%d{sep}%y", f"%d{sep}%m{sep}%y"]
    return [form for form in (month_first, day_first) if form]


def _parse(text: pd.Series, form: str | None) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas' per-element fallback note
        return pd.to_datetime(text, format=form, errors="coerce")


def _dated(
    column: pd.Series, form: str | None, where: Callable[[int], str], path: str, by: str
) -> pd.Series:
    parsed = _parse(column.astype(str), form)
    if form is None and not parsed.isna().any():
        _require_one_form(column.astype(str), path)
    if parsed.isna().any():
        row = int(parsed.isna().to_numpy().argmax())
        shape = f"in the form {by} uses ({form}, e.g. {EXAMPLE.strftime(form)})" if form else ""
        raise DataError(
            f"{path}: {where(row)}: time value {_shown(column.iloc[row])} is not a date "
            f"{shape or 'or an integer step'}; expected one form for the whole column "
            f"(e.g. 2023-01-31){'' if by == '--date-format' else ' or --date-format'}"
        )
    return parsed


def _require_one_form(text: pd.Series, path: str) -> None:
    """Dates pandas cannot find one form for would be read value by value (dateutil), each
    maybe another way: refused, with the flag that names the form."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        pd.to_datetime(text.iloc[:1], errors="coerce")
    if any("infer format" in str(w.message) for w in caught):
        raise DataError(
            f"{path}: the form of the dates ({_shown(text.iloc[0])}...) cannot be told from "
            f"them, so each could be read another way; expected --date-format (e.g. "
            f"%d/%m/%y or %Y-%m-%d %H:%M)"
        )


def _integers(column: pd.Series, where: Callable[[int], str], path: str) -> pd.Series:
    values = column.to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) > 2**53)
    if bad.any():
        row = int(bad.argmax())
        raise DataError(
            f"{path}: {where(row)}: time value {_shown(column.iloc[row])} is neither a date "
            f"nor an integer step; expected one kind for the whole column"
        )
    return pd.Series(values.astype(np.int64), index=column.index)


def _shown(value: object) -> str:
    """A cell as the file has it: 'an empty cell', or its text quoted (never a numpy repr)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return "an empty cell"
    return repr(str(value))
