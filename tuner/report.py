"""Trials table and study summary: what `tuner trials` prints and the parent run carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from tuner.tracking import StudyTracker


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, duration, params, run id, test metrics."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        duration = trial.duration.total_seconds() if trial.duration else None
        attrs = trial.user_attrs
        row: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.name,
            "value": trial.value,
            "duration_s": duration,
        }
        row.update(trial.params)
        row.update({k: v for k, v in attrs.items() if k.startswith("test_")})
        row["pruned_at_epoch"] = attrs.get("pruned_at_epoch")
        row["fail_reason"] = attrs.get("fail_reason")
        row["run_id"] = attrs.get("mlflow_run_id")
        rows.append(row)
    return pd.DataFrame(rows)


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def study_summary(study: optuna.Study) -> dict[str, Any]:
    """Best value / trial / run and trial counts, as the parent run's tags and metrics."""
    summary: dict[str, Any] = {
        f"n_{state.name.lower()}": len(study.get_trials(deepcopy=False, states=(state,)))
        for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    }
    best = best_trial(study)
    if best is not None:
        summary.update(
            best_value=best.value,
            best_trial=best.number,
            best_run_id=best.user_attrs.get("mlflow_run_id", ""),
        )
        summary.update(
            {f"best_{k}": v for k, v in best.user_attrs.items() if k.startswith("test_")}
        )
    return summary


def close_study_record(
    study: optuna.Study, tracker: StudyTracker, out_dir: Path, status: str = "FINISHED"
) -> Path:
    """Write the trials CSV, log it and the summary on the parent run, close the run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "trials.csv"
    trials_table(study).to_csv(path, index=False)
    tracker.close_study(study_summary(study), [path], status=status)
    return path
