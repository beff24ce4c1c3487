"""Which trials an ensemble takes: the named ones, or the best K that emit what the best
one emits (the task's `ensemble_inputs`) and kept their weights; for fresh fits, also a
trial that kept none, judged by the model its recorded settings build."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from tuner.config import keys, trial_attrs
from tuner.contract.checkpoints import load_checkpoint, restore_model
from tuner.contract.task import Task
from tuner.errors import UsageError
from tuner.models.sources import resolve_source
from tuner.reports.ranking import ranked_trials


@dataclass(frozen=True)
class Member:
    trial: optuna.trial.FrozenTrial
    payload: dict[str, Any]


def choose_members(
    study: optuna.Study,
    task: Task,
    top: int,
    trials: str | None,
    tracking_uri: str,
    storage: str,
    leads: frozenset[int] = frozenset(),
    weights: bool = True,
) -> tuple[list[Member], list[str]]:
    """The members, best first (the best of `leads` first when given): the named trials,
    or the best `top` that agree with the best one on the task's ensemble inputs and kept
    their weights. `weights=False` (fresh fits, which train the configurations again)
    also takes a trial that kept none, judged by the model its recorded settings build."""
    candidates = _candidates(study, trials, leads)
    members: list[Member] = []
    skipped: list[str] = []
    for trial in candidates:
        if not trials and len(members) == top:
            break
        kept = {keys.MODEL_ID, keys.WEIGHTS_URI} & set(trial_attrs.of(trial))
        if kept:
            payload = payload_of(trial, task, tracking_uri, storage)
        else:
            payload = None if weights else _recorded(trial, task)
        why = _unusable(payload, members, task)
        if why and trials:
            raise UsageError(f"--trials: trial {trial.number} {why}")
        if why:
            skipped.append(f"trial {trial.number} {why}")
            continue
        members.append(Member(trial, payload))
    if len(members) < 2:
        raise UsageError(
            f"--study {study.study_name!r}: an ensemble needs 2 trials or more; found "
            f"{len(members)} usable ({'; '.join(skipped) or 'too few complete trials'})"
        )
    return members, skipped


def _candidates(
    study: optuna.Study, trials: str | None, leads: frozenset[int]
) -> list[optuna.trial.FrozenTrial]:
    """The trials that may join, in rank order (the best of `leads` first): the named ones
    (each must have completed within the study's constraints), else every ranked trial."""
    ranked = ranked_trials(study)
    if leads:  # the best of them first, then the others in rank order (a stable sort)
        ranked.sort(key=lambda t: t.number not in leads)
    if not trials:
        return ranked
    wanted = _trial_numbers(trials, study)
    candidates = [t for t in ranked if t.number in wanted]
    missing = wanted - {t.number for t in candidates}
    if missing:
        raise UsageError(
            f"--trials: trial(s) {', '.join(map(str, sorted(missing)))} of study "
            f"{study.study_name!r} did not complete (or break its constraints)"
        )
    return candidates


def _unusable(payload: dict[str, Any] | None, members: list[Member], task: Task) -> str:
    """Why a trial cannot join (no weights kept; inputs that differ from the lead's and
    that the task cannot read in the lead's frame), or "" when it can."""
    if payload is None:
        return "kept no weights (a study keeps its top keep_top trials', 5 by default)"
    if not members:
        return ""
    lead, own = members[0].payload["hyper_parameters"], payload["hyper_parameters"]
    differs = [k for k in task.ensemble_inputs or () if own.get(k) != lead.get(k)]
    if not differs:
        return ""
    shown = ", ".join(f"{k}={own.get(k)}" for k in differs)
    if task.reframe is None:
        return f"reads other inputs than trial {members[0].trial.number} ({shown})"
    try:
        task.reframe(lead, _model_of(payload, task))
    except ValueError as exc:
        return f"{exc} ({shown})"
    return ""


def _recorded(trial: optuna.trial.FrozenTrial, task: Task) -> dict[str, Any] | None:
    """A trial's configuration without weights, from the settings it recorded (a fresh
    fit trains them again): None when it recorded none."""
    settings = trial_attrs.of(trial).get(keys.SETTINGS)
    if not isinstance(settings, dict):
        return None
    settings = {**task.defaults, **settings}  # a setting newer than the study: its default
    return {"hyper_parameters": task.spec.model_args(settings), "settings": settings}


def _model_of(payload: dict[str, Any], task: Task) -> Any:
    """The member's model: its weights restored, or (a configuration of `_recorded`) an
    untrained one, enough to say whether it reads the lead's windows."""
    if "state_dict" in payload:
        return restore_model(payload, task)
    try:
        return task.model_class(**task.upgrade(dict(payload["hyper_parameters"])))
    except TypeError as exc:  # the task's model needs more than its settings (the data's)
        raise ValueError(f"its model cannot be built from its settings alone ({exc})") from None


def _trial_numbers(text: str, study: optuna.Study) -> set[int]:
    try:
        numbers = {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise UsageError(f"--trials {text!r}: expected trial numbers such as 3,7,9") from None
    if len(numbers) < 2:
        raise UsageError(f"--trials {text!r}: an ensemble needs 2 trials or more")
    return numbers


def payload_of(
    trial: optuna.trial.FrozenTrial, task: Task, tracking_uri: str, storage: str
) -> dict[str, Any]:
    """The checkpoint a trial kept in its run (the best's model, or a top-`keep_top` file)."""
    source = resolve_source(f"runs:/{trial_attrs.of(trial)[keys.RUN_ID]}", tracking_uri, storage)
    return load_checkpoint(source.path, task.name)
