"""A user's model answering a table when its module gives no `predict`: the `input` column
holds one sequence per row (a nested list, or its JSON text as a CSV cell holds it); the rows
are stacked into one tensor (integers as int64, else float32) and given to the model's
`forward`; the `output` column holds each row's output as a nested list. The same form is
the model's input example, made from its `example_input_array`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from tuner.contract.datafiles import FRAME
from tuner.errors import DataError

INPUT, OUTPUT = "input", "output"


def has_forward(model: Any) -> bool:
    import lightning.pytorch as pl

    return type(model).forward is not pl.LightningModule.forward


def forward_predict(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """The model's forward on the `input` column, one output row per input row."""
    if not has_forward(model):
        raise DataError(
            f"{type(model).__name__} has no forward: give its module a "
            f"predict(model, frame) function (docs/custom.md)"
        )
    inputs = as_tensor(frame)
    model.eval()
    with torch.no_grad():
        output = model(inputs.to(model.device))
    if isinstance(output, (tuple, list)):  # (output, state) of a recurrent forward
        output = output[0]
    return pd.DataFrame({OUTPUT: [row.tolist() for row in output.detach().cpu()]})


def as_tensor(frame: pd.DataFrame) -> torch.Tensor:
    if INPUT not in frame.columns:
        raise DataError(f"{FRAME}: no column {INPUT!r}; expected one sequence per row")
    rows = [_sequence(cell, k) for k, cell in enumerate(frame[INPUT])]
    shapes = {row.shape for row in rows}
    if len(shapes) != 1:
        raise DataError(f"{FRAME}: the {INPUT!r} rows differ in shape ({sorted(shapes)[:3]})")
    stacked = np.stack(rows)
    if np.issubdtype(stacked.dtype, np.integer):
        return torch.as_tensor(stacked, dtype=torch.int64)
    return torch.as_tensor(stacked.astype(np.float32))


def _sequence(cell: Any, row: int) -> np.ndarray:
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except ValueError:
            raise DataError(
                f"{FRAME}: row {row + 1}: {INPUT!r} is {cell[:40]!r}; expected a list of "
                f"numbers (JSON, e.g. [[0.1], [0.2]])"
            ) from None
    values = np.asarray(cell)
    if values.dtype == object or not np.issubdtype(values.dtype, np.number) or not values.ndim:
        raise DataError(f"{FRAME}: row {row + 1}: {INPUT!r} is not a list of numbers")
    return values


def example_of(model: Any) -> pd.DataFrame | None:
    """The model's `example_input_array` as an input table (None without one)."""
    example = getattr(model, "example_input_array", None)
    if not isinstance(example, torch.Tensor) or not example.dim():
        return None
    return pd.DataFrame({INPUT: [row.tolist() for row in example]})


def timing_inputs(model: Any, datamodule: Any) -> tuple[Any, ...]:
    """What `latency_ms` times the forward on: the model's `example_input_array`."""
    example = model.example_input_array
    return tuple(example) if isinstance(example, (tuple, list)) else (example,)


def user_example(given: Any) -> Callable[[], pd.DataFrame] | None:
    """The module's EXAMPLE (a DataFrame, or a function returning one) as a function."""
    if given is None:
        return None
    return given if callable(given) else lambda: given
