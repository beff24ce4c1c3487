"""`tuner ensemble`: one model that averages the outputs of a study's best trials (the top K,
or the trials named), scored on the same validation and test parts as its members, and
registered as an MLflow pyfunc model beside the single best (`<model>-ensemble`).

On a small validation set the single best trial is partly luck; an average of the best few
usually generalises better (benchmarks/RESULTS.md measures by how much). The members must
read and emit the same things (the task's `ensemble_inputs`: a forecast's window and
horizon, a classifier's classes): `--top K` takes the best K trials that agree with the
best one and says which it skipped; `--trials` refuses a trial that does not agree.
The ensemble is the task's own LightningModule carrying the other members
(tuner.contract.members), so predict, `mlflow.pyfunc` and fine-tune use it unchanged.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from tuner.config import keys
from tuner.contract.checkpoints import load_checkpoint, restore_model, save_checkpoint
from tuner.contract.members import RULES, carry, split
from tuner.contract.registry import get_task
from tuner.contract.task import Task
from tuner.errors import UsageError
from tuner.models.sources import resolve_source
from tuner.reports.ranking import ranked_trials
from tuner.runtime.logs import quiet_libraries
from tuner.storage.locations import resolve_storage, resolve_tracking
from tuner.storage.studies import load_study
from tuner.tracking import StudyTracker, pyfunc_model
from tuner.training.loop import evaluate


@dataclass(frozen=True)
class Member:
    trial: optuna.trial.FrozenTrial
    payload: dict[str, Any]


@dataclass(frozen=True)
class EnsembleResult:
    study: str
    members: list[int]
    skipped: list[str]  # why a better trial is not a member
    metrics: dict[str, float]  # the ensemble's, on the validation and test parts
    single: dict[str, float]  # the best member alone, on the same parts
    model_name: str
    model_version: str
    run_id: str
    source: str = ""  # fresh fits (`--seeds`): the trial they train again
    source_metrics: dict[str, float] = field(default_factory=dict)  # as its sweep recorded


def build_ensemble(
    study_name: str,
    top: int = 3,
    trials: str | None = None,
    combine: str = "",
    storage: str | None = None,
    tracking_uri: str | None = None,
    data: Any = None,
    leads: frozenset[int] = frozenset(),
) -> EnsembleResult:
    """Choose, load, score and register; everything is checked before anything is logged.
    A seed ensemble's fits pass `data`, the study's data already read, and `leads`, the
    trials that may lead (whose frame the others are read in: the best configuration's)."""
    quiet_libraries()
    storage = resolve_storage(storage)
    tracking_uri, _ = resolve_tracking(tracking_uri, None)
    study = load_study(study_name, storage)
    task = get_task(keys.study_attr(study, keys.TASK), allow_module=False)
    if task.ensemble_inputs is None:
        raise UsageError(
            f"--study {study_name!r}: task {task.name!r} cannot average models across trials yet"
        )
    check_combine(combine)
    if trials is None and top < 2:
        raise UsageError(f"--top {top}: an ensemble needs 2 trials or more")
    chosen, skipped = choose_members(study, task, top, trials, tracking_uri, storage, leads)
    ensemble = _assemble([m.payload for m in chosen], task, "" if combine == "mean" else combine)
    lead = chosen[0].payload
    if data is None:
        data = task.load_data(study_data_args(study))
    settings = {**lead["settings"], "seed": int(keys.study_attr(study, keys.SEED)), "fold": 0}
    datamodule = task.build_datamodule(data, settings)
    metrics = score(ensemble, datamodule)
    single = score(restore_model(lead, task), datamodule)
    example = task.example(data, lead["settings"]) if task.example else None
    record = _register(study, task, chosen, ensemble, metrics, tracking_uri, example)
    return EnsembleResult(study_name, [m.trial.number for m in chosen], skipped, metrics,
                          single, *record)  # fmt: skip


def check_combine(combine: str) -> None:
    if combine and combine not in ("mean", *RULES):
        raise UsageError(f"--combine {combine!r}: expected one of mean, {', '.join(RULES)}")


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
        kept = keys.MODEL_ID in trial.user_attrs or keys.WEIGHTS_URI in trial.user_attrs
        if kept:
            payload = _payload(trial, task, tracking_uri, storage)
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
    settings = trial.user_attrs.get(keys.SETTINGS)
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


def _payload(trial: optuna.trial.FrozenTrial, task: Task, tracking_uri: str, storage: str) -> dict:
    source = resolve_source(f"runs:/{trial.user_attrs[keys.RUN_ID]}", tracking_uri, storage)
    return load_checkpoint(source.path, task.name)


def _assemble(payloads: list[dict[str, Any]], task: Task, rule: str) -> Any:
    """Every member's models (a K-fold trial keeps several) carried by the first: each
    trial's models count alike when the trials keep as many each."""
    groups = [split(restore_model(payload, task)) for payload in payloads]
    if task.reframe:  # members of another window or transform read the lead's
        lead = payloads[0]["hyper_parameters"]
        groups = [[task.reframe(lead, model) for model in group] for group in groups]
    if len({len(group) for group in groups}) > 1:
        raise UsageError(
            "the trials keep different numbers of fold models ("
            + ", ".join(str(len(g)) for g in groups)
            + "): their average would weigh them unequally; choose trials of one fold count"
        )
    models = [model for group in groups for model in group]
    return carry(models[0], models[1:], task.combine, rule).eval()


def score(model: Any, datamodule: Any) -> dict[str, float]:
    """The model's validation and test metrics, computed here on the same parts."""
    return {
        **evaluate(model, datamodule.val_dataloader(), "val"),
        **evaluate(model, datamodule.test_dataloader(), "test"),
    }


def study_data_args(study: optuna.Study) -> dict[str, Any]:
    data = dict(keys.study_attr(study, keys.DATA))
    if not isinstance(data.get("data"), str):
        raise UsageError(
            f"--study {study.study_name!r}: its data was given in memory, not as a file this "
            f"command can read again"
        )
    return data


def _register(
    study: optuna.Study,
    task: Task,
    members: list[Member],
    model: Any,
    metrics: dict[str, float],
    tracking_uri: str,
    example: Any,
) -> tuple[str, str, str]:
    """A run beside the trials, with the metrics; the model logged and registered as a new
    version of `<model>-ensemble`, its `best` alias on the best ensemble so far."""
    name = f"{study.user_attrs.get(keys.MODEL_NAME) or study.study_name}-ensemble"
    tracker = StudyTracker(tracking_uri, study.study_name, model_name=name)
    numbers = [m.trial.number for m in members]
    runs = [m.trial.user_attrs[keys.RUN_ID] for m in members]
    tags = {keys.MEMBERS_TAG: ",".join(map(str, numbers)), keys.MEMBER_RUNS_TAG: ",".join(runs)}
    run_id = tracker.start_ensemble(study.user_attrs[keys.PARENT_RUN_ID], numbers, tags)
    model_id = tracker.new_model(run_id, numbers[0])
    tracker.log_history(run_id, [(metrics, 0)], model_id)  # linked to the model too
    metric = keys.study_attr(study, keys.METRIC)
    sign = 1.0 if study.directions[0].name == "MINIMIZE" else -1.0
    rank = (sign * metrics[metric], metrics.get("val_loss", 0.0))
    lead = members[0].payload
    meta = {**lead["meta"], "members": numbers, "run_id": run_id, "value": metrics[metric]}
    with tempfile.TemporaryDirectory() as folder:
        path = save_checkpoint(Path(folder) / "ensemble.ckpt", model, task.name,
                               lead["settings"], meta)  # fmt: skip
        params = pyfunc_model.default_params(task)
        logged = tracker.log_best_model(
            model_id, run_id, numbers[0], rank, task, path, example, params
        )
    tracker.move_best_alias(logged.version, rank)
    tracker.client.set_terminated(run_id)
    return name, logged.version, run_id


def describe(result: EnsembleResult) -> list[str]:
    """What `tuner ensemble` prints: each figure beside the best member alone and, for
    fresh fits, beside the chosen trial as its sweep kept it."""
    members = f"trials {', '.join(map(str, result.members))} of study {result.study}"
    if result.source:
        members = f"{len(result.members)} fresh fits of {result.source} ({members})"
    lines = [f"ensemble of {members}"]
    lines += [f"  skipped: {why}" for why in result.skipped]
    shown = sorted(
        k for k in result.metrics if k.startswith(("val_", "test_")) and "loss" not in k
    )
    alone = "best fit alone" if result.source else "best trial alone"
    for key in shown:
        beside = ((alone, result.single.get(key)),
                  ("the sweep's own model", result.source_metrics.get(key)))  # fmt: skip
        notes = "; ".join(f"{label}: {value:.4f}" for label, value in beside if value is not None)
        lines.append(f"  {key} = {result.metrics[key]:.4f}" + (f"  ({notes})" if notes else ""))
    lines.append(
        f"model          models:/{result.model_name}/{result.model_version} "
        f"(alias models:/{result.model_name}@best)"
    )
    return lines
