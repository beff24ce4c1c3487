"""Garbage collection between trials at the cost of what a trial left, not of everything
the process holds.

Optuna collects after each trial (`gc_after_trial=True`: a trial's models and loaders sit in
reference cycles, and their tensors must go before the next trial builds its own). A full
collection walks every tracked object: with torch, Lightning, MLflow and SQLAlchemy loaded
that is about half a million objects and 0.5 s on this machine, paid between every two
trials (benchmarks/RESULTS.md, "Between trials"). What survives a trial's collection is the
process's long-lived state (modules, the data, the stores' caches), so it is frozen
(`gc.freeze`): later collections walk only what later trials make. Every FULL_EVERY trials,
and when the sweep ends, the frozen objects are handed back, so a cycle among them that
became garbage is still collected."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FULL_EVERY = 25  # trials between two collections of everything


class FrozenSurvivors:
    """An Optuna callback (it runs after the trial's collection): freeze what survived."""

    def __init__(self) -> None:
        self.trials = 0

    def __call__(self, study: Any, trial: Any) -> None:
        self.trials += 1
        if self.trials % FULL_EVERY == 0:
            gc.unfreeze()
            gc.collect()
        gc.freeze()


@contextmanager
def survivors_frozen() -> Iterator[FrozenSurvivors]:
    """The callback, and everything handed back to the collector when the trials end."""
    try:
        yield FrozenSurvivors()
    finally:
        gc.unfreeze()
