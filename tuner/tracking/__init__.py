"""Everything MLflow, and nothing else imports mlflow: the record of a running study
(study_runs.StudyTracker, model_registry.StudyModel), the reading of a tracking store
(store.TrackingStore), checks that it answers (checks) and the MLflow Model's loader
(pyfunc_model).

Its names are imported on first use (PEP 562): `tuner.tracking.checks` is read by commands
that never load MLflow (`tuner best`, `trials`), and importing it runs this file."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and editors; at run time, __getattr__ below
    from tuner.tracking.model_registry import BEST_ALIAS
    from tuner.tracking.store import CHECKPOINT_DIR, SHARED_VIEW_TAG, VIEW_KEY, TrackingStore
    from tuner.tracking.study_runs import StudyTracker
    from tuner.tracking.trial_records import RUN_STATUS

_MODULES = ("model_registry", "store", "study_runs", "trial_records")  # where the names below live
__all__ = [
    "BEST_ALIAS",
    "CHECKPOINT_DIR",
    "RUN_STATUS",
    "SHARED_VIEW_TAG",
    "VIEW_KEY",
    "StudyTracker",
    "TrackingStore",
]


def __getattr__(name: str) -> Any:
    for module in _MODULES if name in __all__ else ():
        found = getattr(importlib.import_module(f"{__name__}.{module}"), name, None)
        if found is not None:
            return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
