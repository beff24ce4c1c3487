"""Caps on every study's size from the environment, for smoke runs and the docs test
(tests/test_docs.py runs the README's commands under them): TUNER_MAX_TRIALS caps a study's
trial target, TUNER_MAX_EPOCHS each trial's max_epochs, TUNER_MAX_BATCHES the training
batches of each epoch. Unset, nothing is capped; the study header says when a cap applied."""

from __future__ import annotations

import os

from tuner.config.space import SearchSpace
from tuner.errors import UsageError

TRIALS_VAR, EPOCHS_VAR, BATCHES_VAR = "TUNER_MAX_TRIALS", "TUNER_MAX_EPOCHS", "TUNER_MAX_BATCHES"


def _cap(name: str) -> int | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{name}={text!r}: expected an integer >= 1 (or unset: no cap)")
    return int(text)


def capped_trials(trials: int) -> tuple[int, list[str]]:
    """The trial target under TUNER_MAX_TRIALS, and its note when it caps."""
    cap = _cap(TRIALS_VAR)
    if cap is None or trials <= cap:
        return trials, []
    return cap, [f"{TRIALS_VAR}={cap} caps this study at {cap} trials (asked: {trials})"]


def capped_epochs(space: SearchSpace, default: int | None) -> tuple[SearchSpace, list[str]]:
    """The space with max_epochs pinned to TUNER_MAX_EPOCHS where it could train longer
    (a searched max_epochs, a fixed one above the cap, or the task's `default` above it)."""
    cap = _cap(EPOCHS_VAR)
    epochs = space.fixed.get("max_epochs", default)
    searched = space.param("max_epochs") is not None
    if cap is None or not (searched or epochs is None or int(epochs) > cap):
        return space, []
    return space.with_fixed({"max_epochs": cap}), [f"{EPOCHS_VAR}={cap} caps max_epochs at {cap}"]


def batch_cap() -> tuple[int | None, list[str]]:
    """TUNER_MAX_BATCHES: the training batches an epoch takes at most, and its note."""
    cap = _cap(BATCHES_VAR)
    return cap, [] if cap is None else [f"{BATCHES_VAR}={cap} caps each epoch at {cap} batches"]
