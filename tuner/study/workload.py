"""What the settings make a sweep do, said before its first trial: folds that multiply each
trial's work, and a pruner that the epochs, folds or trial count leave nothing to decide."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tuner.config.goals import deployed_forms
from tuner.config.options import MEDIAN_STARTUP
from tuner.study.samplers import decides_at
from tuner.training.folds import fold_count


def workload_notes(
    settings: Mapping[str, Any], pruner: Any, trials: int, backtests: bool = False
) -> list[str]:
    """One line per setting that multiplies the work or makes the pruner idle; folds are
    named `backtests` where they are (a forecast's, whose newest fold models it keeps)."""
    folds = fold_count(settings)
    epochs = int(settings["max_epochs"])
    notes = []
    if folds > 1:
        named = "backtests" if backtests else "folds"
        notes.append(f"{folds} {named}: each trial trains {folds} models, one per fold (about "
                     f"{folds}x the time of one hold-out)")  # fmt: skip
    if not isinstance(pruner, str) or pruner == "none":
        return notes
    steps, decides = epochs * folds, decides_at(pruner)
    first = next((step for step in range(1, steps) if decides(step)), None)
    if first is None:
        notes.append(f"--pruner {pruner} has nothing to decide: a trial reports {steps} "
                     f"step(s) ({epochs} epochs x {folds} fold(s)) and it decides from step "
                     f"{_first_decision(decides)} on; every trial trains to the end "
                     f"(more epochs, or --pruner hyperband)")  # fmt: skip
    elif pruner == "median" and trials <= MEDIAN_STARTUP:
        notes.append(f"--pruner median prunes nothing in {trials} trial(s): it waits for "
                     f"{MEDIAN_STARTUP} complete trials to compare with")  # fmt: skip
    return notes


def _first_decision(decides: Callable[[int], bool]) -> int:
    return next(step for step in range(1, 10_000) if decides(step))


def deployed_notes(costs: list[str]) -> list[str]:
    """Which form the costs a space names are measured on, where it is an export."""
    return [
        f"{', '.join(c for c in costs if c.endswith(form))}: measured on each trial's fresh "
        f"model exported as {form} ONNX graphs (ONNX Runtime, 1 thread, CPU) before it "
        f"trains, as `tuner export --format {form}` writes it"
        for form in deployed_forms(costs)
    ]
