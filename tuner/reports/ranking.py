"""Trials table and study summary: what `tuner trials` prints and the parent run carries."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import pandas as pd
from optuna.study import StudyDirection
from optuna.trial import TrialState

from tuner.config import keys, trial_attrs
from tuner.config.goals import COSTS, Constraint, meets, parse_constraints

if TYPE_CHECKING:  # MLflow: only a study's closing record needs it
    from tuner.tracking import StudyTracker


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # the trials a study's target counts


def trial_state(trial: optuna.trial.FrozenTrial) -> str:
    """COMPLETE, PRUNED, FAIL, INTERRUPTED, RUNNING, WAITING, or SKIPPED. Optuna records an
    interrupted trial (Ctrl-C, a preemption notice, a process that died) and one that
    another process's finish made unnecessary as failed, but neither failed."""
    if trial_attrs.of(trial).get(keys.SKIPPED):
        return "SKIPPED"
    if trial.state == TrialState.FAIL and interrupted(trial):
        return "INTERRUPTED"
    return trial.state.name


def interrupted(trial: optuna.trial.FrozenTrial) -> bool:
    """Stopped from outside rather than failed: by the user, a preemption, or its
    process's end (its retry, where one was queued, names it: `retry_of`)."""
    attrs = trial_attrs.of(trial)
    return attrs.get(keys.FAIL_REASON) == keys.INTERRUPTED or keys.INTERRUPTED_BY in attrs


def retry_of(trial: optuna.trial.FrozenTrial) -> int | None:
    """The interrupted trial this one retries (Optuna's retry bookkeeping), if any."""
    failed = trial.system_attrs.get("failed_trial")
    return int(failed) if failed is not None else None


def state_counts(study: optuna.Study) -> dict[str, int]:
    """complete / pruned / fail / interrupted counts (skipped trials are no failures, and
    interrupted ones are counted apart)."""
    counts = {"complete": 0, "pruned": 0, "fail": 0, "interrupted": 0}
    for trial in study.get_trials(deepcopy=False):
        state = trial_state(trial).lower()
        if state in counts:
            counts[state] += 1
    return counts


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, duration, params, run id, test metrics;
    integer params stay integers where a trial has none (failed before sampling)."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        duration = trial.duration.total_seconds() if trial.duration else None
        attrs = trial_attrs.of(trial)
        row: dict[str, Any] = {
            "number": trial.number,
            "state": trial_state(trial),
            "value": value_of(trial),
            "duration_s": duration,
        }
        row.update(trial.params)
        row.update({k: attrs[k] for k in COSTS if k in attrs})
        row.update({k: v for k, v in attrs.items() if k.startswith("test_")})
        if keys.FOLD_VALUES in attrs:  # the value is a mean over folds: how far they spread
            row[keys.VALUE_STD] = attrs.get(keys.VALUE_STD)
        if keys.PRUNED_FOLD in attrs:
            row[keys.PRUNED_FOLD] = attrs[keys.PRUNED_FOLD]
        row["pruned_at_epoch"] = attrs.get(keys.PRUNED_AT)
        row["origin"] = origin(attrs, retry_of(trial))
        if keys.INFEASIBLE in attrs:
            row[keys.INFEASIBLE] = attrs[keys.INFEASIBLE]
        row["fail_reason"] = attrs.get(keys.FAIL_REASON)
        row["run_id"] = attrs.get(keys.RUN_ID)
        rows.append(row)
    return _integer_params(pd.DataFrame(rows), study)


def origin(attrs: dict[str, Any], retried: int | None = None) -> str | None:
    """Where a trial came from when not from the sampler: a warm start from an earlier
    study's trial, the first trial its space names, or a retry of an interrupted trial
    (`retried`), which resumed its checkpoint where one was left."""
    if keys.RESUMED_FROM in attrs:
        where = attrs[keys.RESUMED_FROM]
        return f"resumed trial {where['trial']} after epoch {where['epoch']}"
    if retried is not None:
        return f"retry of trial {retried}"
    if keys.WARM_START in attrs:
        return f"warm start from {attrs[keys.WARM_START]}"
    if keys.FIRST_OF_SPACE in attrs:
        return f"the first trial {attrs[keys.FIRST_OF_SPACE]} names"
    return None


def _integer_params(table: pd.DataFrame, study: optuna.Study) -> pd.DataFrame:
    """pandas turns an int column with a gap into floats (64 -> 64.0): keep them integers."""
    values: dict[str, list[Any]] = {}
    for trial in study.get_trials(deepcopy=False):
        for name, value in trial.params.items():
            values.setdefault(name, []).append(value)
    for name, seen in values.items():
        if all(isinstance(v, int) and not isinstance(v, bool) for v in seen):
            table[name] = table[name].astype("Int64")
    return table


def best_trial(
    study: optuna.Study, trials: list[optuna.trial.FrozenTrial] | None = None
) -> optuna.trial.FrozenTrial | None:
    """The study's best complete trial: the best value, then among equal values the best
    tie-break metric (the space's `tie_break`, val_loss by default), then the earliest.
    Every place that chooses a best trial asks here (Optuna's own `best_trial` would keep
    the first of 18 trials tied at val_acc 1.0). `trials`: the study's, read already."""
    ranked = ranked_trials(study, trials)
    return ranked[0] if ranked else None


def ranked_trials(
    study: optuna.Study, trials: list[optuna.trial.FrozenTrial] | None = None
) -> list[optuna.trial.FrozenTrial]:
    """The complete trials that meet the study's constraints, best first, by `best_trial`'s
    rule (a multi-objective study: by its first objective, the quality metric)."""
    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    limits = study_constraints(study)
    return _best_first(study, [t for t in complete if meets(t, limits)])


def _best_first(
    study: optuna.Study, trials: list[optuna.trial.FrozenTrial]
) -> list[optuna.trial.FrozenTrial]:
    """By the first objective, then the tie-break score, then the trial number."""
    sign = 1.0 if study.directions[0] == StudyDirection.MINIMIZE else -1.0
    return sorted(trials, key=lambda t: (sign * value_of(t), tie_score(t), t.number))


def beats(value: float, held: float, direction: str) -> bool:
    """Strictly better in the study's direction: a tie keeps the holder of `@best`."""
    return value < held if direction == "minimize" else value > held


def stronger_baseline(
    metric: str, value: float, direction: str, baselines: dict[str, float]
) -> tuple[str, float] | None:
    """The strongest of the task's simple baselines on the same validation rows
    (`val_<baseline>_<measure>` beside `val_<measure>`: val_snaive_mae, val_majority_acc,
    val_unigram_bpc) when the model does not beat it; None when it beats them all."""
    measure = metric.removeprefix("val_")
    same = {k: v for k, v in baselines.items() if k.startswith("val_") and k != metric
            and k.endswith(f"_{measure}")}  # fmt: skip
    if not same:
        return None
    name = min(same, key=lambda k: same[k] if direction == "minimize" else -same[k])
    return None if beats(value, same[name], direction) else (name, same[name])


def value_of(trial: optuna.trial.FrozenTrial) -> float | None:
    """The trial's value, or its first objective's in a multi-objective study."""
    return trial.values[0] if trial.values else None


def study_constraints(study: optuna.Study) -> tuple[Constraint, ...]:
    """The constraints the study's space holds its models to, from its record."""
    space = keys.study_attr(study, keys.SPACE)
    return parse_constraints(space.get("constraints"), "constraints:")


def pareto_front(
    study: optuna.Study, constraints: tuple[Constraint, ...] = ()
) -> list[optuna.trial.FrozenTrial]:
    """The non-dominated complete trials (one objective: the best trial), those meeting
    `constraints` (asked now, on their recorded costs), best first objective first."""
    if len(study.directions) == 1:
        ranked = [t for t in ranked_trials(study) if meets(t, constraints)]
        return ranked[:1]
    limits = (*study_constraints(study), *constraints)
    return _best_first(study, [t for t in study.best_trials if meets(t, limits)])


def tie_score(trial: optuna.trial.FrozenTrial) -> float:
    """The trial's tie-break metric at its best epoch, lower is better (inf: none)."""
    return float(trial_attrs.of(trial).get(keys.TIE_SCORE, math.inf))


def study_summary(study: optuna.Study) -> dict[str, Any]:
    """Best value / trial / run and trial counts, as the parent run's tags and metrics."""
    summary: dict[str, Any] = {f"n_{state}": n for state, n in state_counts(study).items()}
    best = best_trial(study)
    if best is not None:
        summary.update(
            best_value=value_of(best),
            best_trial=best.number,
            best_run_id=trial_attrs.of(best).get(keys.RUN_ID, ""),
        )
        summary.update(
            {f"best_{k}": v for k, v in trial_attrs.of(best).items() if k.startswith("test_")}
        )
        # under the trials' own names too, so the parent row of the runs table shows the
        # study's best in the same columns as its trials
        metric = keys.study_attr(study, keys.METRIC)
        summary[metric] = summary[f"best_{metric}"] = value_of(best)
        # and the baselines on the best trial's validation rows (val_snaive_mae...)
        summary.update(
            {k: v for k, v in trial_attrs.of(best).items() if k.startswith(("test_", "val_"))}
        )
    return summary


def describe_study(study: optuna.Study) -> str:
    """The parent run's description in the MLflow UI: best value, params, next steps."""
    best = best_trial(study)
    counts = study_summary(study)
    lines = [
        f"**Study {study.study_name}** ({keys.study_attr(study, keys.TASK) or '?'}): "
        f"{counts['n_complete']} complete, {counts['n_pruned']} pruned, "
        f"{counts['n_fail']} failed, {counts['n_interrupted']} interrupted trials."
    ]
    if best is not None:
        metric = keys.study_attr(study, keys.METRIC)
        params = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items()
        )
        lines += [
            f"Best {metric} = {value_of(best):.4g} (trial {best.number}): {params}.",
            f"Fine-tune it: `tuner finetune --from study:{study.study_name} --data NEW.csv`;"
            f" report: `tuner report --study {study.study_name}`.",
        ]
    return "\n\n".join(lines)


def compare_studies(studies: list[optuna.Study]) -> pd.DataFrame:
    """One row per study: best value, trial counts, wall time, best params."""
    rows = []
    for study in studies:
        summary = study_summary(study)
        started = [t for t in study.get_trials(deepcopy=False) if t.datetime_start]
        ends = [t.datetime_complete for t in started if t.datetime_complete]
        wall = (max(ends) - min(t.datetime_start for t in started)).total_seconds() if ends else 0
        best = best_trial(study)
        rows.append(
            {
                "study": study.study_name,
                "task": keys.study_attr(study, keys.TASK),
                "metric": keys.study_attr(study, keys.METRIC),
                "direction": study.directions[0].name.lower(),
                "best_value": value_of(best) if best else None,
                "best_trial": best.number if best else None,
                "complete": summary["n_complete"],
                "pruned": summary["n_pruned"],
                "failed": summary["n_fail"],
                "interrupted": summary["n_interrupted"],
                "wall_s": round(wall, 1),
                "best_params": best.params if best else {},
            }
        )
    return pd.DataFrame(rows)


def close_study_record(
    study: optuna.Study, tracker: StudyTracker, out_dir: Path, status: str = "FINISHED"
) -> Path:
    """Write the trials CSV, log it and the summary on the parent run, close the run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "trials.csv"
    trials_table(study).to_csv(path, index=False)
    tracker.describe(describe_study(study))
    tracker.close_study(study_summary(study), [path], status=status)
    return path
