"""Reading users' data files the same way in every task: a CSV that must hold rows, a split
column of train / val / test, and the splits every trial of a space needs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuner.errors import DataError


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV with a header and at least one row, or a DataError that says what is wrong."""
    if not path.is_file():
        raise DataError(f"{path}: data file not found; expected a CSV file (--data FILE)")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; expected a CSV with a header row") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot read as CSV ({str(exc).splitlines()[0]})") from None
    if frame.empty:
        raise DataError(
            f"{path}: has a header but no rows; expected one row per time step or sequence step"
        )
    return frame


SPLITS = ("train", "val", "test")


def split_column(path: Path | str, values: Any, lines: bool = False) -> np.ndarray:
    """A split value per row or sequence, each train, val or test; `lines`: the values are
    a CSV column's rows, so the error can name the file line."""
    split = np.asarray(values).astype(str)
    bad = np.flatnonzero(~np.isin(split, SPLITS))
    if len(bad):
        where = f"line {bad[0] + 2}: " if lines else ""
        raise DataError(f"{path}: {where}split {split[bad[0]]!r}; expected train, val or test")
    return split


def worst_split_settings(space: Any, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a space allows that leave the fewest validation and training items:
    the smallest val_fraction and the largest test_fraction it can draw."""
    return {
        **defaults,
        **space.fixed,
        "val_fraction": space.value_range("val_fraction", defaults)[0],
        "test_fraction": space.value_range("test_fraction", defaults)[1],
    }


def require_splits(source: str, split: np.ndarray, items: str) -> None:
    """Data that leave no training or no validation items cannot make one trial."""
    for stage, word in (("train", "training"), ("val", "validation")):
        if not (split == stage).any():
            raise DataError(
                f"{source}: {len(split)} {items} leave no {word} {items}; expected enough "
                f"{items} (per class) for training and validation, or a split column with "
                f"train and val rows"
            )
