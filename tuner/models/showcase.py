"""The figures a task's user looks at in `tuner report` (the task's `report_views`: a
forecast against the actuals, a confusion matrix), drawn from the study's best model on
its test part: the model loaded from its run, the study's data read again."""

from __future__ import annotations

from collections.abc import Callable

import optuna

from tuner.config import keys, trial_attrs
from tuner.contract.checkpoints import restore_model
from tuner.contract.registry import get_task, registered
from tuner.errors import TunerError
from tuner.models.choice import payload_of
from tuner.models.topk import fold_zero, study_data_args
from tuner.reports.ranking import best_trial

View = tuple[str, Callable[[], None] | str]  # a figure to draw, or an HTML fragment


def best_model_views(
    study: optuna.Study, tracking_uri: str, storage: str
) -> tuple[list[View], str]:
    """The task's views of the best model, or none and why (one line)."""
    name = keys.study_attr(study, keys.TASK)
    if name not in registered():
        return [], f"none: {name} is a model of your own, which declares no views"
    task = get_task(name, allow_module=False)
    best = best_trial(study)
    if task.report_views is None or best is None or keys.RUN_ID not in trial_attrs.of(best):
        return [], "none: no complete trial kept a model" if best is None else ""
    try:
        payload = payload_of(best, task, tracking_uri, storage)
        data = task.load_data(study_data_args(study))
    except TunerError as exc:
        return [], f"not drawn: {exc}"
    datamodule = task.build_datamodule(data, fold_zero(study, payload["settings"]))
    return task.report_views(restore_model(payload, task), datamodule), ""
