"""`tuner predict`: a trained model plus new input -> a table a person can read."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tuner import study as studies
from tuner.contract.checkpoints import restore_model
from tuner.contract.datafiles import write_csv_atomically
from tuner.models.sources import data_args_for, load_source
from tuner.storage.locations import resolve_storage, resolve_tracking


def predict(
    source: str,
    data: Mapping[str, Any] | None = None,
    out: str | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    task: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Predict with the model SRC names on `data` (default: the data it was trained on)."""
    studies.quiet_libraries()
    storage = resolve_storage(storage)
    tracking_uri, _ = resolve_tracking(tracking_uri)
    loaded = load_source(source, tracking_uri, storage, task)
    payload, found = loaded.payload, loaded.task
    data_args = data_args_for(payload, data or {}, found)
    chosen = found.checked_options(options or {})
    model = restore_model(payload, found)
    table = found.predict(model, data_args, payload["settings"], chosen)
    if out:
        write_csv_atomically(table, Path(out))
    return table
