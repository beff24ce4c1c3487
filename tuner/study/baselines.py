"""The study's statistical baselines (an ETS forecast, a feature classifier...): computed
once, before the first trial, on the test part every trial shares; kept as a study
attribute (a resumed run or another worker reads them back), logged on the parent run, and
recorded with each trial's test figures beside the task's simple baselines. Their time is
the study's, never a trial's."""

from __future__ import annotations

import time
from collections.abc import Mapping

import optuna

from tuner.config import keys
from tuner.study._config import Prepared
from tuner.tracking import StudyTracker


def study_baselines(
    study: optuna.Study, prepared: Prepared, tracker: StudyTracker, quiet: bool = False
) -> dict[str, float]:
    """The task's statistical baselines for this study: read back when a run computed them
    already, else computed now, recorded and said in a note; none where the space
    searches a setting that moves the test part (each trial's would differ)."""
    task = prepared.task
    searched = {spec.name for spec in prepared.space.params}
    if task.statistical_baselines is None or searched & set(task.split_settings):
        return {}
    cached = study.user_attrs.get(keys.STUDY_BASELINES)
    if isinstance(cached, Mapping):
        return dict(cached)
    started = time.perf_counter()
    settings = {**task.defaults, **prepared.space.fixed}
    values = {k: float(v) for k, v in task.statistical_baselines(prepared.data, settings).items()}
    study.set_user_attr(keys.STUDY_BASELINES, values)
    tracker.log_history(study.user_attrs[keys.PARENT_RUN_ID], [(values, 0)])
    if not quiet:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
        print(f"note: baselines on the test part, once for the study "
              f"({time.perf_counter() - started:.1f} s, outside trial time): {shown}")  # fmt: skip
    return values
