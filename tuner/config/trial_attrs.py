"""A trial's attributes in Optuna's storage, written in two calls instead of one per key:
while it runs they gather here, and `write` stores them as one structured attribute
(`record`), once when the trial starts (what other processes need while it runs: its worker
and run) and once before Optuna is told its end. `of` reads a trial's attributes back,
the record and single ones alike (trials of older studies carry one attribute per key).

Optuna writes each attribute in a transaction of its own: 17 of them cost a small trial
more store time than anything else it recorded (benchmarks/RESULTS.md)."""

from __future__ import annotations

from typing import Any

RECORD = "record"
_pending: dict[int, dict[str, Any]] = {}  # trial id -> what is not yet written


def put(trial: Any, key: str, value: Any) -> None:
    """Set the running trial's attribute `key` (written by the next `write`)."""
    _pending.setdefault(trial._trial_id, {})[key] = value


def write(trial: Any) -> None:
    """Store what gathered since the last write, in one call."""
    pending = _pending.pop(trial._trial_id, None)
    if pending:
        trial.set_user_attr(RECORD, {**trial.user_attrs.get(RECORD, {}), **pending})


def drop(trial: Any) -> None:
    """Forget what gathered: the trial is no longer this process's to write."""
    _pending.pop(trial._trial_id, None)


def of(trial: Any) -> dict[str, Any]:
    """The trial's attributes: single ones, its record's, and (a trial running in this
    process) those not yet written."""
    found = dict(trial.user_attrs)
    record = found.pop(RECORD, None)
    if isinstance(record, dict):
        found.update(record)
    found.update(_pending.get(getattr(trial, "_trial_id", -1), {}))
    return dict(sorted(found.items()))  # by name, as Optuna returns single attributes
