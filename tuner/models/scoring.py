"""One validation figure for every model a study makes, computed one way: fold by fold, each
fold's models on that fold's validation part (which they never trained on), averaged.

A K-fold trial keeps its fold models as one (tuner.contract.members); scoring that carrier
on one fold's validation part would let the other folds' models answer for rows they trained
on (classification folds), and a single fold's rows are not the rows a trial's value is the
mean over. So a top-k or seed ensemble is scored as its members were: for each fold `f` they
all kept, the average of their fold-`f` models on fold `f`'s validation part. A trial scored
this way gives back its own fold values; the holder of `@best` is scored on the same folds
before an ensemble may take its alias (`tuner.reports.ranking.beats`).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from torch import nn

from tuner.contract.checkpoints import restore_model
from tuner.contract.members import carry, split
from tuner.contract.task import Task
from tuner.training.loop import evaluate


def fold_models(payload: Mapping[str, Any], task: Task, frame: Mapping | None = None) -> list:
    """A checkpoint's models, one per fold it kept (fold 0 first), read in `frame` (the
    lead member's hyperparameters) where the task can reframe them."""
    models = split(restore_model(dict(payload), task))
    if task.reframe and frame is not None:
        models = [task.reframe(frame, model) for model in models]
    return models


def validation_figure(
    groups: list[list[nn.Module]], task: Task, datamodules: list[Any], rule: str = ""
) -> dict[str, float]:
    """The `val_*` metrics of the models in `groups` (one list of fold models per member,
    fold 0 first), averaged fold by fold: fold `f`'s members combined and scored on the
    validation part of `datamodules[f]` (built once by the caller for every model it
    scores), for as many folds as `datamodules` holds; the result's `folds` says how many."""
    per_fold = []
    for fold, datamodule in enumerate(datamodules):
        model = combined([[group[fold]] for group in groups], task, rule)
        per_fold.append(evaluate(model, datamodule.val_dataloader(), "val"))
        split(model)  # plain again: the same models may be carried again
    names = set.intersection(*(set(metrics) for metrics in per_fold))
    figure = {name: statistics.fmean(m[name] for m in per_fold) for name in sorted(names)}
    return {**figure, "folds": float(len(datamodules))}


def combined(groups: list[list[nn.Module]], task: Task, rule: str = "") -> nn.Module:
    """Every model of `groups` as one that combines their outputs (the task's `combine`,
    or the named `rule`); `split` makes them plain again."""
    models = [model for group in groups for model in group]
    return carry(models[0], models[1:], task.combine, rule).eval()


def rows_of(folds: int) -> str:
    """Which validation rows a figure comes from, as a person reads it."""
    if folds <= 1:
        return "the validation part"
    return f"the validation parts of folds 0-{folds - 1}"
