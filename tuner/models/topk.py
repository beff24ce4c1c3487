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

from tuner.config import keys, trial_attrs
from tuner.contract.checkpoints import save_checkpoint
from tuner.contract.members import RULES, split
from tuner.contract.registry import get_task, registered
from tuner.contract.task import Task
from tuner.errors import UsageError
from tuner.models.choice import Member, choose_members, payload_of
from tuner.models.scoring import combined, fold_models, rows_of, validation_figure
from tuner.reports.ranking import beats, ranked_trials
from tuner.runtime.logs import quiet_libraries
from tuner.storage.locations import resolve_storage, resolve_tracking
from tuner.storage.studies import load_study
from tuner.tracking import StudyTracker, pyfunc_model
from tuner.training.loop import evaluate


@dataclass(frozen=True)
class EnsembleResult:
    study: str
    members: list[int]
    skipped: list[str]  # why a better trial is not a member
    metrics: dict[str, float]  # the ensemble's, on the validation and test parts
    single: dict[str, float]  # the lead member alone, on the same parts
    model_name: str
    model_version: str
    run_id: str
    aliased: bool  # took its `@best`: it beats the study's @best on validation
    holder: dict[str, float] = field(default_factory=dict)  # the study's @best, same rows
    holder_trial: int = -1
    metric: str = ""  # the study's: the figure the alias is decided on
    source: str = ""  # fresh fits (`--seeds`): the trial they train again


def build_ensemble(
    study_name: str,
    top: int = 3,
    trials: str | None = None,
    combine: str = "",
    storage: str | None = None,
    tracking_uri: str | None = None,
    data: Any = None,
    leads: frozenset[int] = frozenset(),
    holder_study: str | None = None,
    task: str | None = None,
) -> EnsembleResult:
    """Choose, load, score and register; everything is checked before anything is logged.
    A seed ensemble's fits pass `data`, the study's data already read, `leads`, the trials
    that may lead (whose frame the others are read in: the best configuration's), and
    `holder_study`, the sweep whose best model the fits must beat. `task`: the user's own
    --task, which a study of a user's model needs."""
    quiet_libraries()
    storage = resolve_storage(storage)
    tracking_uri, _ = resolve_tracking(tracking_uri, None)
    study = load_study(study_name, storage)
    found = averaging_task(study, task)
    check_combine(combine)
    if trials is None and top < 2:
        raise UsageError(f"--top {top}: an ensemble needs 2 trials or more")
    chosen, skipped = choose_members(study, found, top, trials, tracking_uri, storage, leads)
    holder = _holder(holder_study, study, storage)
    lead = chosen[0].payload
    data = _checked_data(study, found, data, lead["settings"])
    settings = fold_zero(study, lead["settings"])
    scored = _scores(chosen, holder, found, data, settings, "" if combine == "mean" else combine,
                     (tracking_uri, storage))  # fmt: skip
    example = found.example(data, lead["settings"]) if found.example else None
    record = _register(study, found, chosen, scored, tracking_uri, example)
    if record[3]:  # it took its @best: `tuner best` of the sweep names it
        _note_ensemble(holder_study or study_name, storage, record[0], scored.metrics)
    return EnsembleResult(study_name, [m.trial.number for m in chosen], skipped, scored.metrics,
                          scored.single, *record, holder=scored.held,
                          holder_trial=holder.number,
                          metric=keys.study_attr(study, keys.METRIC))  # fmt: skip


def _note_ensemble(study_name: str, storage: str, name: str, metrics: dict) -> None:
    """The sweep records its ensemble's validation figure, so `tuner best` reads it from
    Optuna's storage (reading commands do not import MLflow)."""
    study = load_study(study_name, storage)
    metric = keys.study_attr(study, keys.METRIC)
    held = dict(study.user_attrs.get(keys.ENSEMBLES) or {})
    study.set_user_attr(keys.ENSEMBLES, {**held, f"models:/{name}@best": metrics[metric]})


def _checked_data(study: optuna.Study, task: Task, data: Any, lead: dict[str, Any]) -> Any:
    """The study's data (read again unless given), where the task's models can be averaged
    (asked on the lead member's settings) before anything is scored or logged."""
    if data is None:
        data = task.load_data(study_data_args(study))
    if task.check_ensemble is not None:
        task.check_ensemble(data, lead)
    return data


@dataclass
class Scored:
    """The ensemble (to register), its figures and those of the lead member alone and of
    the study's `@best` holder, all on the same validation folds and test part."""

    model: Any
    metrics: dict[str, float]
    single: dict[str, float]
    held: dict[str, float]


def _holder(holder_study: str | None, study: optuna.Study, storage: str) -> Any:
    """The trial whose model holds the study's `@best` (its best trial): the ensemble must
    beat it on the same validation folds to take an `@best` of its own."""
    source = load_study(holder_study, storage) if holder_study else study
    ranked = [t for t in ranked_trials(source) if keys.MODEL_ID in trial_attrs.of(t)]
    if not ranked:
        raise UsageError(f"--study {source.study_name!r}: no trial holds a registered model")
    return ranked[0]


def _scores(
    chosen: list[Member],
    holder: optuna.trial.FrozenTrial,
    task: Task,
    data: Any,
    settings: dict[str, Any],
    rule: str,
    stores: tuple[str, str],
) -> Scored:
    """Every figure one way (tuner.models.scoring): validation fold by fold on the folds
    all of them kept, test on the shared test part."""
    frame = chosen[0].payload["hyper_parameters"]
    groups = [fold_models(m.payload, task, frame) for m in chosen]
    if len({len(group) for group in groups}) > 1:
        raise UsageError(
            "the trials keep different numbers of fold models ("
            + ", ".join(str(len(g)) for g in groups)
            + "): their average would weigh them unequally; choose trials of one fold count"
        )
    held_models = groups[0]
    if not _same(holder, chosen[0]):
        held_models = fold_models(payload_of(holder, task, *stores), task, frame)
    folds = min(len(groups[0]), len(held_models))
    # each fold's data once, for all three (fold 0's test part is every model's test part)
    datamodules = [task.build_datamodule(data, {**settings, "fold": f}) for f in range(folds)]
    if task.adopt is not None:  # a user's model that brings its own loaders: the lead's
        for datamodule, model in zip(datamodules, groups[0], strict=False):
            task.adopt(model, datamodule)
    figures = [
        {**validation_figure(members, task, datamodules, rule),
         **_test_figure(members, task, datamodules[0], rule)}
        for members in (groups, groups[:1], [held_models])
    ]  # fmt: skip
    return Scored(combined(groups, task, rule), *figures)


def assemble(payloads: list[dict[str, Any]], task: Task, rule: str = "") -> Any:
    """Every member's models (a K-fold trial keeps several) carried by the first, each read
    in the first's frame: each trial's models count alike when the trials keep as many."""
    frame = payloads[0]["hyper_parameters"]
    return combined([fold_models(payload, task, frame) for payload in payloads], task, rule)


def _same(holder: optuna.trial.FrozenTrial, member: Member) -> bool:
    return trial_attrs.of(holder).get(keys.RUN_ID) == trial_attrs.of(member.trial).get(keys.RUN_ID)


def _test_figure(groups: list[list[Any]], task: Task, datamodule: Any, rule: str) -> dict:
    """Every model of `groups` combined, on the test part (the same for every fold)."""
    model = combined(groups, task, rule)
    metrics = evaluate(model, datamodule.test_dataloader(), "test")
    split(model)
    return metrics


def averaging_task(study: optuna.Study, task: str | None = None) -> Task:
    """The study's task, refused where it cannot average models. A user's model is taken
    only from the user's own `task` (--task), which must name the study's: the study's
    record never chooses which code runs."""
    name = keys.study_attr(study, keys.TASK)
    if name not in registered() and task is None:
        raise UsageError(
            f"--study {study.study_name!r}: its model is your own ({name}); pass --task "
            f"{name} if you trust that code (docs/custom.md)"
        )
    found = get_task(task) if task else get_task(name, allow_module=False)
    if found.name != name:
        raise UsageError(f"--task {task!r}: study {study.study_name!r} is of task {name!r}")
    if found.ensemble_inputs is None:
        raise UsageError(
            f"--study {study.study_name!r}: task {found.name!r} cannot average models yet"
        )
    return found


def check_combine(combine: str) -> None:
    if combine and combine not in ("mean", *RULES):
        raise UsageError(f"--combine {combine!r}: expected one of mean, {', '.join(RULES)}")


def fold_zero(study: optuna.Study, settings: dict[str, Any]) -> dict[str, Any]:
    """A trial's settings for its fold-0 data, split with the study's seed: the rows its
    models are scored on again (fold 0's test part is every fold's)."""
    return {**settings, "seed": int(keys.study_attr(study, keys.SEED)), "fold": 0}


def study_data_args(study: optuna.Study) -> dict[str, Any]:
    data = dict(keys.study_attr(study, keys.DATA))
    if "data" in data and not isinstance(data["data"], str):  # absent: the module's own
        raise UsageError(
            f"--study {study.study_name!r}: its data was given in memory, not as a file this "
            f"command can read again"
        )
    return data


def _register(
    study: optuna.Study,
    task: Task,
    members: list[Member],
    scored: Scored,
    tracking_uri: str,
    example: Any,
) -> tuple[str, str, str, bool]:
    """A run beside the trials, with the figures; the model logged and registered as a new
    version of `<model>-ensemble`. Its `best` alias moves to it only when it beats the
    study's `@best` holder on the same validation folds (and the ensemble holding the alias
    now): a worse ensemble is recorded, never deployed by the alias."""
    name = f"{study.user_attrs.get(keys.MODEL_NAME) or study.study_name}-ensemble"
    tracker = StudyTracker(tracking_uri, study.study_name, model_name=name)
    numbers = [m.trial.number for m in members]
    runs = [trial_attrs.of(m.trial)[keys.RUN_ID] for m in members]
    metric, direction = keys.study_attr(study, keys.METRIC), study.directions[0].name.lower()
    metrics = scored.metrics
    rows = f"{study.study_name}: {rows_of(int(metrics['folds']))}"
    tags = {keys.MEMBERS_TAG: ",".join(map(str, numbers)), keys.MEMBER_RUNS_TAG: ",".join(runs),
            keys.ROWS_TAG: rows}  # fmt: skip
    run_id = tracker.start_ensemble(study.user_attrs[keys.PARENT_RUN_ID], numbers, tags)
    model_id = tracker.new_model(run_id, numbers[0])
    held = {f"holder_{k}": v for k, v in scored.held.items() if k.startswith("val_")}
    tracker.log_history(run_id, [({**metrics, **held}, 0)], model_id)  # linked to the model
    sign = 1.0 if direction == "minimize" else -1.0
    rank = (sign * metrics[metric], metrics.get("val_loss", 0.0))
    lead = members[0].payload
    meta = {**lead["meta"], "members": numbers, "run_id": run_id, "value": metrics[metric]}
    checkpoint = (scored.model, lead["settings"], meta)
    version = _log_model(tracker, task, checkpoint, (run_id, model_id), rank, example, rows)
    aliased = beats(metrics[metric], scored.held[metric], direction)
    if aliased:
        aliased = tracker.move_best_alias(version, rank, rows)
    tracker.client.set_terminated(run_id)
    return name, version, run_id, aliased


def _log_model(
    tracker: StudyTracker,
    task: Task,
    checkpoint: tuple[Any, dict[str, Any], dict[str, Any]],
    ids: tuple[str, str],
    rank: tuple[float, float],
    example: Any,
    rows: str,
) -> str:
    """The ensemble's checkpoint (model, settings, meta) logged as an MLflow Model of its
    run (`ids`: run and logged model) and registered; returns the version."""
    run_id, model_id = ids
    model, settings, meta = checkpoint
    with tempfile.TemporaryDirectory() as folder:
        path = save_checkpoint(Path(folder) / "ensemble.ckpt", model, task.name, settings, meta)
        params = pyfunc_model.default_params(task)
        logged = tracker.log_best_model(
            model_id, run_id, meta["members"][0], rank, task, path, example, params, rows
        )
    return logged.version


def describe(result: EnsembleResult) -> list[str]:
    """What `tuner ensemble` prints: each figure beside the best member alone and the
    study's `@best` holder, on the same rows, and whether the ensemble took `@best`."""
    members = f"trials {', '.join(map(str, result.members))} of study {result.study}"
    if result.source:
        members = f"{len(result.members)} fresh fits of {result.source} ({members})"
    folds = int(result.metrics.get("folds", 1))
    alone = "best fit alone" if result.source else "best trial alone"
    tested = (
        ", test on the test part" if any(k.startswith("test_") for k in result.metrics) else ""
    )
    lines = [
        f"ensemble of {members}",
        f"  validation figures on {rows_of(folds)}{tested}; beside each: the {alone} and the "
        f"study's @best, same rows",
    ]
    lines += [f"  skipped: {why}" for why in result.skipped]
    shown = sorted(
        k for k in result.metrics if k.startswith(("val_", "test_")) and "loss" not in k
    )
    holder = f"@best (trial {result.holder_trial})"
    for key in shown:
        beside = ((alone, result.single.get(key)), (holder, result.holder.get(key)))
        notes = "; ".join(f"{label}: {value:.4f}" for label, value in beside if value is not None)
        lines.append(f"  {key} = {result.metrics[key]:.4f}" + (f"  ({notes})" if notes else ""))
    version = f"models:/{result.model_name}/{result.model_version}"
    if result.aliased:
        lines.append(f"model          {version} (alias models:/{result.model_name}@best)")
    else:
        ours, theirs = result.metrics[result.metric], result.holder[result.metric]
        lines.append(
            f"model          {version}, not aliased @best: {result.metric} {ours:.4f} is no "
            f"better than {holder}'s {theirs:.4f} on the same rows; the study's @best stays"
        )
    return lines
