"""Cross-validation folds and backtests: how many a study uses, which items each fold
validates on, and what a trial's folds add up to. No torch here: task specs and `fit_space`
use it before anything trains.

A trial with K folds trains K models with the same params and fresh weights: fold k
validates on its own part (a stratified fold of the sequences, or the backtest window k
steps back) and trains on the rest. Its value is the mean over folds of each fold's
best-epoch metric. One small hold-out chooses on noise (the airline demo kept a trial whose
single 1959 window scored 8.8 and whose 1960 test was 17.1); K folds average it out.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuner.config.settings import Setting
from tuner.errors import SpaceError

AUTO = 0  # the `folds` value that lets the data decide
# Validation items (sequences, or forecast windows) below which one hold-out is too noisy
# to choose on: the standard error of an accuracy near 0.9 is 2.1 points at 200 items and
# 4.7 at 41 (JapaneseVowels' hold-out), more than the gap between good trials.
AUTO_BELOW = 200


def folds_setting(auto_k: int) -> Setting:
    """The `folds` setting of a task that supports them (charlm and speech do not)."""
    return Setting(
        "folds",
        AUTO,
        f"cross-validation folds / backtest windows per trial (0 = auto: {auto_k} when the "
        f"validation part has fewer than {AUTO_BELOW} items; 1 = one hold-out)",
        low=0,
        high=20,
    )


def require_fixed(space: Any, names: Sequence[str]) -> None:
    """Settings that decide what a trial is validated on cannot be searched: trials with
    other folds would be scored on other data, and their values could not be compared."""
    searched = [name for name in names if space.param(name) is not None]
    if searched:
        raise SpaceError(
            f"{space.source}: params.{searched[0]}: {searched[0]} decides what every trial "
            f"is validated on and cannot be searched; set it under fixed"
        )


def fold_count(settings: Mapping[str, Any]) -> int:
    """The folds a trial runs (a task without the setting: 1, its hold-out)."""
    return max(1, int(settings.get("folds") or 1))


def auto_folds(validation_items: int, wanted: int, most: int) -> int:
    """K for `folds: 0`: `wanted` (at most what the data allows) when one hold-out would
    validate on fewer than AUTO_BELOW items, else 1."""
    if validation_items >= AUTO_BELOW:
        return 1
    return max(1, min(wanted, most))


def stratified_folds(labels: Sequence[Any], k: int, seed: int = 0) -> np.ndarray:
    """A fold number per item: each class spread evenly over the k folds (its items in a
    random order, dealt round-robin, each class starting where the last one stopped, so
    fold sizes differ by at most one)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    folds = np.empty(len(labels), dtype=np.int64)
    start = 0
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        folds[members] = (start + np.arange(len(members))) % k
        start = (start + len(members)) % k
    return folds


@dataclass(frozen=True)
class FoldResult:
    """One fold of a trial: its best epoch's metric and tie-break score."""

    value: float
    tie: float
    best_epoch: int


def summarize_folds(results: Sequence[FoldResult]) -> dict[str, float]:
    """What the folds add up to: the trial's value and tie score (means) and their spread."""
    values = [r.value for r in results]
    return {
        "value": statistics.fmean(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "tie": statistics.fmean(r.tie for r in results),
    }
