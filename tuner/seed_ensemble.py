"""`tuner ensemble --seeds N`: the best trial's configuration trained again with N fresh
training seeds (the same data, splits and folds; other initial weights, dropout and batch
order), their models averaged into one and registered as `<model>-seeds-ensemble`.

Why: the checkpoint a sweep keeps is the training run that fitted the validation part best.
On small data, after hundreds of trials, that is partly luck: on the airline, the best trials
of 1000-trial sweeps scored test MAE 18.8 and 17.7, and their configurations trained again
with other seeds 11.7-14.6 (benchmarks/RESULTS.md). A fresh fit does not carry the luck of
the search, and an average of several fits is steadier than any one of them.

The fits are the trials of a study of their own, `<study>-t<trial>-seeds`: every setting
fixed to the chosen trial's, `train_seed` queued as --seed + 1 ... --seed + N. So they are
recorded (runs, curves, checkpoints), shown, stopped and resumed like any sweep, and a
second command with a larger N trains only the seeds not yet run. The ensemble itself is
built from those trials by `tuner.topk_ensemble`.
"""

from __future__ import annotations

import dataclasses

import optuna
from optuna.trial import TrialState

from tuner import keys, stores
from tuner import study as studies
from tuner.errors import UsageError
from tuner.names import clean_name
from tuner.options import MAX_SEED
from tuner.registry import get_task
from tuner.report import best_trial
from tuner.resume import study_setup
from tuner.space import ParamSpec, SearchSpace, parse_space
from tuner.task import Task
from tuner.topk_ensemble import (
    EnsembleResult,
    build_ensemble,
    check_combine,
    study_data_args,
)

MOST_SEEDS = 50  # every fit keeps its weights (keep_top): a bound on what a study stores
SEED_PARAM = ParamSpec("train_seed", "int", low=0, high=MAX_SEED)


def build_seed_ensemble(
    study_name: str,
    seeds: int,
    combine: str = "",
    storage: str | None = None,
    tracking_uri: str | None = None,
    quiet: bool = False,
) -> EnsembleResult:
    """Check, train the seeds not yet trained, then average every fit of the chosen trial."""
    studies.quiet_libraries()
    if not 2 <= seeds <= MOST_SEEDS:
        raise UsageError(f"--seeds {seeds}: expected 2 to {MOST_SEEDS} fresh fits")
    check_combine(combine)
    storage = stores.resolve_storage(storage)
    tracking_uri, artifact_root = stores.resolve_tracking(tracking_uri, None)
    source = stores.load_study(study_name, storage)
    prepared, chosen = _prepare(source, seeds, storage, tracking_uri, artifact_root)
    config = studies.SearchConfig(
        task=prepared.task.name,
        trials=seeds,
        study=prepared.name,
        seed=int(source.user_attrs.get("seed", 0)),  # the splits of the chosen trial
        sampler="random",
        pruner="none",  # every fit trains to the end: pruning would select by luck again
        quiet=quiet,
    )
    studies.execute(prepared, config)
    fits = _fits(prepared.name, storage)
    if len(fits) < 2:
        raise UsageError(
            f"study {prepared.name!r}: {len(fits)} fit(s) completed of {seeds}; an ensemble "
            f"needs 2 or more (see `tuner trials --study {prepared.name}`)"
        )
    numbers = ",".join(str(t.number) for t in fits)
    ensemble = build_ensemble(prepared.name, trials=numbers, combine=combine, storage=storage,
                              tracking_uri=tracking_uri, data=prepared.data)  # fmt: skip
    return dataclasses.replace(ensemble, source=f"trial {chosen.number} of study {study_name}",
                               source_metrics=_recorded(chosen))  # fmt: skip


def _prepare(
    source: optuna.Study,
    seeds: int,
    storage: str,
    tracking_uri: str,
    artifact_root: str | None,
) -> tuple[studies.Prepared, optuna.trial.FrozenTrial]:
    """The fits' study, checked: the chosen trial's settings fixed, its data read again,
    the seeds queued; nothing is created here."""
    task = get_task(source.user_attrs.get("task", ""), allow_module=False)
    if task.ensemble_inputs is None:
        raise UsageError(
            f"--study {source.study_name!r}: task {task.name!r} cannot average models yet"
        )
    chosen = best_trial(source)
    if chosen is None or keys.SETTINGS not in chosen.user_attrs:
        raise UsageError(f"--study {source.study_name!r}: no complete trial to train again")
    data_args = study_data_args(source)
    data = task.load_data(data_args)
    space = _fits_space(source, task, chosen)
    name = clean_name(f"{source.study_name}-t{chosen.number}-seeds")
    model_name = clean_name(f"{source.user_attrs.get(keys.MODEL_NAME) or source.study_name}-seeds")
    setup = study_setup(space.to_dict(), data_args, "32-true")
    swept = (source.user_attrs.get(keys.SETUP) or {}).get("data_sha256")
    if swept and swept != setup["data_sha256"]:
        raise UsageError(
            f"--study {source.study_name!r}: its data file {data_args['data']} changed since "
            f"the sweep; fits on other data would not be the chosen trial's"
        )
    existing = stores.read_studies(storage)
    studies.check_existing_study(existing.get(name), name, task, space, setup, False)
    stores.check_tracking(tracking_uri)
    stores.check_artifact_home(tracking_uri, artifact_root, name)
    base = int(source.user_attrs.get("seed", 0))
    queued = tuple({SEED_PARAM.name: (base + k) % (MAX_SEED + 1)} for k in range(1, seeds + 1))
    lineage = {  # each fit's run leads back to the chosen trial's (`tuner lineage`)
        keys.SOURCE_STUDY_TAG: source.study_name,
        keys.SOURCE_RUN_TAG: chosen.user_attrs.get(keys.RUN_ID, ""),
    }
    prepared = studies.Prepared(
        task, data_args, data, space, name, storage, tracking_uri, artifact_root, [],
        model_name=model_name, lineage=lineage, setup=setup, queued=queued,
    )  # fmt: skip
    return prepared, chosen


def _fits_space(source: optuna.Study, task: Task, chosen: optuna.trial.FrozenTrial) -> SearchSpace:
    """The source's metric and tie-break; every setting the chosen trial trained with,
    fixed; only the training seed varies. Every fit keeps its weights."""
    searched = parse_space(source.user_attrs.get("space") or {}, task.spec, source.study_name)
    settings = {k: v for k, v in chosen.user_attrs[keys.SETTINGS].items() if k != "train_seed"}
    return SearchSpace(
        searched.metric,
        searched.direction,
        (SEED_PARAM,),
        {**settings, "keep_top": MOST_SEEDS},
        f"<fits of trial {chosen.number}>",
        tie_break=searched.tie_break,
    )


def _fits(name: str, storage: str) -> list[optuna.trial.FrozenTrial]:
    study = stores.load_study(name, storage)
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _recorded(trial: optuna.trial.FrozenTrial) -> dict[str, float]:
    """The chosen trial's test figures as its sweep recorded them (its validation figure is
    a mean over folds, not the one part the ensemble is scored on)."""
    return {k: v for k, v in trial.user_attrs.items() if k.startswith("test_")}
