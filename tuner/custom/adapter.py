"""A user's LightningModule (and data module) as a `Task`: settings from the constructors,
a default space from the module or derived from the constructor, the trial's data and
model built from a trial's settings, predict through the module's `predict` or the model's
`forward`. Checked before the first trial by `tuner.custom.checks`."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from functools import partial
from typing import Any

import pandas as pd
from torch import nn

from tuner.contract.datafiles import read_table
from tuner.contract.lstm import first_lstm, freeze_lstm_layers
from tuner.contract.task import Task
from tuner.custom import checks
from tuner.custom.building import adopt, build_datamodule, build_model, spec_of
from tuner.custom.inputs import forward_predict, timing_inputs, user_example
from tuner.custom.loading import UserParts
from tuner.custom.signature import takes
from tuner.custom.space import default_space
from tuner.errors import DataError, UsageError


def custom_task(parts: UserParts) -> Task:
    """The Task of a user's model: everything the shipped tasks declare beyond the model
    and its data is derived (settings, space, whether its models average) or left out
    (folds, baselines)."""
    spec = spec_of(parts)
    return Task(
        spec=spec,
        add_data_args=partial(_data_flag, parts),
        load_data=partial(load_data, parts),
        fit_space=partial(checks.check_search, parts, spec),
        build_datamodule=partial(build_datamodule, parts, spec),
        build_model=partial(build_model, parts, spec),
        model_class=parts.model,
        predict=partial(predict, parts),
        example=_example(parts),
        backbone=lstm_of,
        fits_model=partial(checks.check_fits, parts, spec),
        ensemble_inputs=(),  # the members share the data module: what they read and emit
        check_ensemble=partial(checks.check_averaging, parts, spec),
        default_space=parts.space or default_space(parts, spec),
        timing_inputs=timing_inputs,
        adopt=adopt,
        code=parts.code,
    )


def load_data(parts: UserParts, data_args: Mapping[str, Any]) -> dict[str, Any]:
    """Nothing is read here (the data module reads its data); --data is refused where the
    data module takes no `data` argument, rather than ignored."""
    if data_args.get("data") is not None and not (parts.data and takes(parts.data, "data")):
        owner = parts.data.__qualname__ if parts.data else parts.model.__qualname__
        raise UsageError(
            f"--data: {owner} takes no `data` argument, so a search or fine-tune cannot hand "
            f"it a file; give its data module a `data` argument (docs/custom.md)"
        )
    return dict(data_args)


def predict(parts: UserParts, model: Any, data_args: Mapping[str, Any],
            settings: Mapping[str, Any], options: Mapping[str, Any]) -> pd.DataFrame:  # fmt: skip
    """The module's `predict(model, frame)`, else the model's forward on `input` rows."""
    source = data_args.get("data")
    if source is None:
        raise DataError("no input given; expected --data FILE.csv (in Python: a DataFrame)")
    frame = read_table(source).frame
    if parts.predict is not None:
        return parts.predict(model.eval(), frame)
    return forward_predict(model, frame)


def _example(parts: UserParts) -> Any:
    """The module's EXAMPLE; with its own `predict` and none, no example (the
    `example_input_array` form fits the default predict only); None: that form."""
    example = user_example(parts.example)
    if example is not None:
        return lambda data, settings: example()
    return (lambda data, settings: None) if parts.predict is not None else None


def lstm_of(model: Any) -> Any:
    """The model's first nn.LSTM, as a fine-tune freezes it (None: the model has none)."""
    found = first_lstm(model)
    return None if found is None else FrozenLayers(found[1])


class FrozenLayers:
    def __init__(self, lstm: nn.LSTM) -> None:
        self.lstm = lstm

    def freeze_layers(self, count: int) -> None:
        freeze_lstm_layers(self.lstm, count)


def _data_flag(parts: UserParts, parser: argparse.ArgumentParser) -> None:
    """--data: what a search passes to the data module (where it takes `data`), and the
    table of inputs `tuner predict` reads."""
    search = ""
    if parts.data is not None and takes(parts.data, "data"):
        search = f"search: passed to {parts.data.__qualname__}(data=...); "
    group = parser.add_argument_group("data")
    group.add_argument("--data", help=f"{search}predict: a CSV of inputs (docs/custom.md)")
