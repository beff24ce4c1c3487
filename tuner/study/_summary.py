"""A study read back: its counts, best trial, test metrics and where its records are."""

from __future__ import annotations

from typing import Any

import optuna

from tuner.config import keys, trial_attrs
from tuner.config.goals import COSTS, Constraint
from tuner.errors import UsageError
from tuner.reports import ranking as report
from tuner.reports.ranking import FINISHED
from tuner.storage.studies import load_study, read_studies
from tuner.study._config import SearchResult


def summarize(
    study: optuna.Study,
    tracking_uri: str,
    storage: str,
    constraints: tuple[Constraint, ...] = (),
) -> SearchResult:
    """The study's best trial; with `constraints`, the best that meets them (on its
    recorded costs); a multi-objective study's front too."""
    _check_measured(study, constraints)
    counts = report.state_counts(study)
    front = report.pareto_front(study, constraints)
    best = front[0] if front else None
    attrs = trial_attrs.of(best) if best else {}
    return SearchResult(
        study=study.study_name,
        metric=keys.study_attr(study, keys.METRIC),
        direction=study.directions[0].name.lower(),
        best_value=report.value_of(best) if best else None,
        best_trial=best.number if best else None,
        best_params=dict(best.params) if best else {},
        best_run_id=attrs.get(keys.RUN_ID),
        checkpoint_uri=attrs.get(keys.CHECKPOINT_URI),
        parent_run_id=study.user_attrs.get(keys.PARENT_RUN_ID),
        model_name=study.user_attrs.get(keys.MODEL_NAME, study.study_name),
        model_version=model_version(study, best) if best else None,
        counts=counts,
        test_metrics={k: v for k, v in attrs.items() if k.startswith("test_")},
        baseline_keys=list(attrs.get(keys.BASELINE_KEYS, [])),
        tracking_uri=tracking_uri,
        storage=storage,
        fold_values=list(attrs.get(keys.FOLD_VALUES, [])),
        front=[_front_row(study, t) for t in front] if len(study.directions) > 1 else [],
        constraints=[str(c) for c in constraints],
        val_baselines={k: v for k, v in attrs.items() if k.startswith("val_")},
        not_promoted=attrs.get(keys.NOT_PROMOTED),
        infeasible=_infeasible(study),
    )


def _infeasible(study: optuna.Study) -> list[tuple[int, str]]:
    """Trials whose model broke a search constraint (not trained), with the reason."""
    found = ((t.number, trial_attrs.of(t).get(keys.INFEASIBLE)) for t in study.get_trials(
        deepcopy=False, states=(optuna.trial.TrialState.PRUNED,)))  # fmt: skip
    return [(number, reason) for number, reason in found if reason]


def _check_measured(study: optuna.Study, limits: tuple[Constraint, ...]) -> None:
    """A constraint on a cost no complete trial recorded selects nothing: say why."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    recorded = {name for t in complete for name in trial_attrs.of(t) if name in COSTS}
    missing = sorted({c.metric for c in limits} - recorded)
    if complete and missing:
        raise UsageError(
            f"--constraint: no complete trial of {study.study_name!r} measured "
            f"{', '.join(missing)}; a search measures a cost only where its --constraint or "
            f"objectives name it (this study's trials recorded "
            f"{', '.join(sorted(recorded)) or 'no cost'})"
        )


def _front_row(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    objectives = keys.study_attr(study, keys.SPACE).get("objectives", [])
    names = [o["metric"] for o in objectives] or [
        f"objective_{i}" for i in range(len(trial.values))
    ]
    return {
        "trial": trial.number,
        **dict(zip(names, trial.values, strict=True)),
        "model_version": model_version(study, trial),
    }


def model_version(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str | None:
    """The version the trial's model became: a trial attribute where it was registered
    during the trial (older studies), else the study attribute its writer recorded."""
    found = trial_attrs.of(trial).get(keys.MODEL_VERSION)
    return found or study.user_attrs.get(keys.model_version_key(trial.number))


def count_finished_by_name(name: str, storage: str) -> int:
    """Finished trials of a study, 0 when it does not exist yet."""
    if name not in read_studies(storage):
        return 0
    return count_finished(load_study(name, storage))


def count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))
