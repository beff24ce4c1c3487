"""Reading users' data the same way in every task: a CSV file or a pandas DataFrame (the
Python API and MLflow's pyfunc hand frames), a split column of train / val / test, and the
splits every trial of a space needs."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuner.config.files import regular_file
from tuner.errors import DataError

FRAME = "the data frame"  # how messages name data given as a DataFrame
# models train in float32 (3.4e38 at most), and an error or a sum of such values must fit too
LARGEST = 1e30
NUMBER = "a finite number within +-1e30 (models compute in float32)"


def unfit_numbers(values: np.ndarray) -> np.ndarray:
    """Where values are not numbers a float32 model can compute with (NaN, inf, or beyond
    1e30: their errors and sums would overflow float32's 3.4e38)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return ~(np.isfinite(values) & (np.abs(values) <= LARGEST))


@dataclass(frozen=True)
class Table:
    """A user's table and how to name its rows in a message: a CSV's lines (its header is
    line 1) or a data frame's rows (counted from 0)."""

    frame: pd.DataFrame
    name: str
    first: int = 2
    unit: str = "line"

    def where(self, position: int) -> str:
        return f"{self.unit} {position + self.first}"


def read_table(source: Any) -> Table:
    """A CSV path or a DataFrame as a Table with at least one row."""
    if source is None:
        raise DataError("no data given; expected --data FILE (in Python: data=...)")
    if isinstance(source, pd.DataFrame):
        if source.empty:
            raise DataError(f"{FRAME}: has no rows; expected one row per step or sequence")
        return Table(source.reset_index(drop=True), FRAME, 0, "row")
    path = Path(source)
    return Table(read_csv(path), str(path))


def is_frame(source: Any) -> bool:
    return isinstance(source, pd.DataFrame)


def in_memory(source: Any) -> bool:
    """Data handed in Python (a DataFrame, numpy arrays) rather than named by a path."""
    return source is not None and not isinstance(source, (str, Path))


def recordable(data_args: Mapping[str, Any]) -> dict[str, Any]:
    """The data options as a record can hold them (study attributes, MLflow params, a
    checkpoint): data given in memory becomes None, since no file names it."""
    return {k: (None if in_memory(v) else v) for k, v in data_args.items() if v is not None}


def fingerprint(source: Any) -> str:
    """sha256 of the data: a file's bytes (a folder's names and sizes), a frame's or arrays'
    values; the same data from another path or host gives the same fingerprint."""
    digest = hashlib.sha256()
    if is_frame(source):
        digest.update(",".join(map(str, source.columns)).encode())
        digest.update(pd.util.hash_pandas_object(source, index=False).to_numpy().tobytes())
    elif isinstance(source, (tuple, np.ndarray)):
        for array in source if isinstance(source, tuple) else (source,):
            digest.update(np.ascontiguousarray(np.asarray(array)).tobytes())
    elif source and Path(source).is_dir():
        folder = Path(source)
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(f"{file.relative_to(folder)}:{file.stat().st_size}\n".encode())
    elif source and Path(source).is_file():
        with open(source, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    else:
        return ""
    return digest.hexdigest()


@dataclass(frozen=True)
class DataFile:
    """In-memory data a launcher wrote to a file for its worker processes (a parquet frame
    or an .npz of arrays), so workers never unpickle the caller's objects."""

    path: str

    @classmethod
    def write(cls, source: Any, folder: Path) -> DataFile:
        if is_frame(source):
            path = folder / "data.parquet"
            source.to_parquet(path)
        else:
            arrays = source if isinstance(source, tuple) else (source,)
            path = folder / "data.npz"
            np.savez(path, *arrays)
        return cls(str(path))

    def load(self) -> Any:
        if self.path.endswith(".parquet"):
            return pd.read_parquet(self.path)
        with np.load(self.path, allow_pickle=False) as arrays:
            loaded = tuple(arrays[f"arr_{i}"] for i in range(len(arrays.files)))
        return loaded if len(loaded) > 1 else loaded[0]


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV with a header and at least one row, or a DataError that says what is wrong."""
    regular_file(path, "data file", "a CSV file (--data FILE)", DataError)
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


def split_column(path: Path | str, values: Any, table: Table | None = None) -> np.ndarray:
    """A split value per row or sequence, each train, val or test; with `table`, the values
    are its column's rows, so the error can name the line (or row)."""
    split = np.asarray(values).astype(str)
    bad = np.flatnonzero(~np.isin(split, SPLITS))
    if len(bad):
        where = f"{table.where(int(bad[0]))}: " if table else ""
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


def sha256_of(path: str | Path) -> str:
    """A file's digest, read in 1 MiB blocks (checkpoints and data files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_csv_atomically(table: pd.DataFrame, path: Path) -> None:
    """Never a half-written output file: write beside it, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        table.to_csv(temp, index=False)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
