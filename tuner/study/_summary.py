"""A study read back: its counts, best trial, test metrics and where its records are."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from tuner import keys, report
from tuner.stores import load_study, read_studies
from tuner.study._config import SearchResult

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def summarize(study: optuna.Study, tracking_uri: str, storage: str) -> SearchResult:
    counts = report.state_counts(study)
    best = report.best_trial(study)
    attrs = best.user_attrs if best else {}
    return SearchResult(
        study=study.study_name,
        metric=study.user_attrs.get("metric", "value"),
        direction=study.direction.name.lower(),
        best_value=best.value if best else None,
        best_trial=best.number if best else None,
        best_params=dict(best.params) if best else {},
        best_run_id=attrs.get(keys.RUN_ID),
        checkpoint_uri=attrs.get(keys.CHECKPOINT_URI),
        parent_run_id=study.user_attrs.get(keys.PARENT_RUN_ID),
        model_name=study.user_attrs.get(keys.MODEL_NAME, study.study_name),
        model_version=attrs.get(keys.MODEL_VERSION),
        counts=counts,
        test_metrics={k: v for k, v in attrs.items() if k.startswith("test_")},
        baseline_keys=list(attrs.get(keys.BASELINE_KEYS, [])),
        tracking_uri=tracking_uri,
        storage=storage,
        fold_values=list(attrs.get(keys.FOLD_VALUES, [])),
    )


def count_finished_by_name(name: str, storage: str) -> int:
    """Finished trials of a study, 0 when it does not exist yet."""
    if name not in read_studies(storage):
        return 0
    return count_finished(load_study(name, storage))


def count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))
