"""What a trial keeps of its model: the study's new best (or a new member of a
multi-objective front) is checkpointed, logged as an MLflow Model and registered; a trial in
the top `keep_top` keeps its weights as a file of its run; the rest keep nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from tuner.config import keys, trial_attrs
from tuner.config.goals import COSTS, dominated
from tuner.contract.checkpoints import save_checkpoint
from tuner.contract.datafiles import recordable
from tuner.custom.inputs import example_of
from tuner.reports.ranking import beats, ranked_trials, tie_score, value_of
from tuner.tracking import pyfunc_model
from tuner.training.fitting import Fitted, TrialContext
from tuner.training.recorder import TrialRecorder


def objective_values(context: TrialContext, trial: optuna.Trial, value: float) -> list[float]:
    """A multi-objective trial's values: its metric, then the costs the space names."""
    return [value, *(trial_attrs.of(trial)[o.metric] for o in context.space.objectives[1:])]


def recorded_costs(trial: optuna.Trial) -> dict[str, float]:
    """The model costs the trial recorded before it trained (tuner.config.goals)."""
    return {k: v for k, v in trial_attrs.of(trial).items() if k in COSTS}


def keep_if_best(
    context: TrialContext,
    trial: optuna.Trial,
    fitted: Fitted,
    settings: dict[str, Any],
    recorder: TrialRecorder,
) -> None:
    """Checkpoint, log and register the weights only when this trial beats the study's best
    (on the metric, then on the tie-break metric: `report.best_trial`'s rule), or in a
    multi-objective study when it joins the Pareto front (every member can be deployed;
    the `best` alias follows the first objective). Where the study has a bar (a
    fine-tune's source), the alias moves only to a model that beats it."""
    rank = (recorder.sign * fitted.value, fitted.tie)
    ranks = [(recorder.sign * value_of(t), tie_score(t)) for t in ranked_trials(trial.study)]
    if not _worth_keeping(context, trial, fitted.value, rank, ranks):
        if sum(other <= rank for other in ranks) < int(settings.get("keep_top") or 0):
            _keep_weights(context, trial, fitted, settings, recorder.run_id)
        return
    task = context.task
    # a user's model without an EXAMPLE: its example_input_array, as `predict` reads it
    example = task.example(context.data, settings) if task.example else example_of(fitted.model)
    with _checkpoint_file(context, trial, fitted, settings, recorder.run_id) as path:
        model_id = context.tracker.new_model(recorder.run_id, trial.number)
        recorder.flush(model_id)  # the run's metrics, test ones included, linked to it
        logged = context.tracker.log_best_model(
            model_id,
            recorder.run_id,
            trial.number,
            rank,
            task,
            path,
            example,
            pyfunc_model.default_params(task),
            promote=_promoted(context, trial, fitted.value),
        )
    trial_attrs.put(trial, keys.CHECKPOINT_URI, logged.uri)
    trial_attrs.put(trial, keys.MODEL_ID, logged.model_id)
    if logged.version:  # written now; else the writer records it (keys.model_version_key)
        trial_attrs.put(trial, keys.MODEL_VERSION, logged.version)


def _promoted(context: TrialContext, trial: optuna.Trial, value: float) -> bool:
    """Whether `best` may move to the new version (where it ranks better than the holder,
    decided by whoever writes it, under the stores' lock): not where the study has a bar
    the trial does not beat (the version stays recorded and the alias where it was)."""
    if context.bar is not None and not beats(value, context.bar, context.space.direction):
        trial_attrs.put(trial, keys.NOT_PROMOTED, context.bar)
        return False
    return True


def _keep_weights(
    context: TrialContext,
    trial: optuna.Trial,
    fitted: Fitted,
    settings: dict[str, Any],
    run_id: str,
) -> None:
    """A trial that is not the best but ranks in the top `keep_top` keeps its checkpoint
    as a file of its run (no model version): an ensemble's member, a source to predict or
    fine-tune from (`runs:/<id>`)."""
    with _checkpoint_file(context, trial, fitted, settings, run_id) as path:
        trial_attrs.put(trial, keys.WEIGHTS_URI, context.tracker.keep_weights(run_id, path))


@contextmanager
def _checkpoint_file(
    context: TrialContext,
    trial: optuna.Trial,
    fitted: Fitted,
    settings: dict[str, Any],
    run_id: str,
) -> Iterator[Path]:
    """The trial's kept model as a checkpoint file, for as long as it is being logged."""
    path = context.checkpoint_dir / f"trial-{trial.number}.ckpt"
    meta = _checkpoint_meta(context, trial, fitted, run_id)
    save_checkpoint(path, fitted.model, context.task.name, settings, meta)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _worth_keeping(
    context: TrialContext,
    trial: optuna.Trial,
    value: float,
    rank: tuple[float, float],
    ranks: list[tuple[float, float]],
) -> bool:
    """Beats the study's best (`ranks`: the complete trials' ranks, best first), or in a
    multi-objective study joins the front."""
    space = context.space
    if space.multi_objective:
        complete = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        values = objective_values(context, trial, value)
        return not dominated(values, [t.values for t in complete], space.directions)
    return not ranks or rank < ranks[0]


def _checkpoint_meta(
    context: TrialContext, trial: optuna.Trial, fitted: Fitted, run_id: str
) -> dict[str, Any]:
    """Where the weights come from: study, trial, metric, data and lineage."""
    return {
        "study": context.tracker.study_name,
        "trial": trial.number,
        "metric": context.space.metric,
        "direction": context.space.direction,
        "value": fitted.value,
        **{k: v for k, v in fitted.details.items() if k in ("best_epoch", "folds")},
        "run_id": run_id,
        "data_args": recordable(context.data_args),
        **context.tracker.tags,
    }
