"""`tuner ensemble --seeds N`: the best trial's configuration (or, with `--top K` / `--trials`,
those trials' configurations) trained again with N fresh training seeds each (the same
data, splits and folds; other initial weights, dropout and batch order), every fit averaged
into one model and registered as `<model>-seeds-ensemble`.

Why: the checkpoint a sweep keeps is the training run that fitted the validation part best.
On small data, after hundreds of trials, that is partly luck: on the airline, the best trials
of 1000-trial sweeps scored test MAE 18.8 and 17.7, and their configurations trained again
with other seeds 11.7-14.6 (benchmarks/RESULTS.md). A fresh fit does not carry the luck of
the search, and an average of several fits is steadier than any one of them; fits of
several good configurations also average away the luck of which configuration won.

The fits are the trials of a study of their own, `<study>-t<trials>-seeds`: every setting
the chosen trials share fixed, the ones they differ in queued with each trial's value,
`train_seed` queued as --seed + 1 ... --seed + N. So they are recorded (runs, curves,
checkpoints), shown, stopped and resumed like any sweep, each fit's run leads back to the
trial it trains again, and a second command with a larger N trains only the seeds not yet
run. The ensemble itself is built from those trials by `tuner.models.topk`, read in the
frame of the best trial's fits.
"""

from __future__ import annotations

import dataclasses

import optuna
from optuna.trial import TrialState

from tuner import study as studies
from tuner.config import keys, trial_attrs
from tuner.config.names import clean_name
from tuner.config.options import MAX_SEED, MOST_SEEDS
from tuner.config.space import ParamSpec, SearchSpace
from tuner.config.space_file import parse_space
from tuner.contract.task import Task
from tuner.errors import UsageError
from tuner.models.choice import choose_members
from tuner.models.topk import (
    EnsembleResult,
    averaging_task,
    build_ensemble,
    check_combine,
    study_data_args,
)
from tuner.reports.ranking import best_trial
from tuner.storage.locations import resolve_storage, resolve_tracking
from tuner.storage.studies import load_study, read_studies

Trial = optuna.trial.FrozenTrial

SEED_PARAM = ParamSpec("train_seed", "int", low=0, high=MAX_SEED)
QUEUEABLE = (type(None), bool, int, float, str)  # what Optuna takes as a categorical choice


def build_seed_ensemble(
    study_name: str,
    seeds: int,
    top: int | None = None,
    trials: str | None = None,
    combine: str = "",
    storage: str | None = None,
    tracking_uri: str | None = None,
    quiet: bool = False,
    task: str | None = None,
) -> EnsembleResult:
    """Check, train the fits not yet trained, then average every fit of the chosen trials."""
    studies.quiet_libraries()
    _check_counts(top, seeds)
    check_combine(combine)
    storage = resolve_storage(storage)
    tracking_uri, artifact_root = resolve_tracking(tracking_uri, None)
    source = load_study(study_name, storage)
    found = averaging_task(source, task)
    configs, skipped = _configs(source, found, seeds, top, trials, tracking_uri, storage)
    stores = (storage, tracking_uri, artifact_root)
    prepared, fits = _train_fits(source, found, configs, seeds, quiet, stores)
    lead = trial_attrs.of(configs[0]).get(keys.RUN_ID)
    ensemble = build_ensemble(
        prepared.name,
        trials=",".join(str(t.number) for t in fits),
        combine=combine,
        storage=storage,
        tracking_uri=tracking_uri,
        data=prepared.data,
        leads=frozenset(t.number for t in fits if trial_attrs.of(t).get(keys.FIT_OF) == lead),
        holder_study=study_name,
        task=task,
    )
    chosen = ", ".join(str(t.number) for t in configs)
    return dataclasses.replace(
        ensemble,
        skipped=[*skipped, *ensemble.skipped],
        source=f"trial{'s' * (len(configs) > 1)} {chosen} of study {study_name}",
    )


def _check_counts(top: int | None, seeds: int) -> None:
    if top is not None and top < 1:
        raise UsageError(f"--top {top}: expected 1 or more trials to train again")
    if not 1 <= seeds <= MOST_SEEDS:
        raise UsageError(f"--seeds {seeds}: expected 2 to {MOST_SEEDS} fresh fits in all")


def _train_fits(
    source: optuna.Study,
    task: Task,
    configs: list[Trial],
    seeds: int,
    quiet: bool,
    stores: tuple[str, str, str | None],
) -> tuple[studies.Prepared, list[Trial]]:
    """The fits not yet trained, as the trials of their own study; every complete fit."""
    config = studies.SearchConfig(
        task=task.name,
        seed=int(keys.study_attr(source, keys.SEED)),  # the splits of the chosen trials
        sampler="random",
        pruner="none",  # every fit trains to the end: pruning would select by luck again
        quiet=quiet,
    )
    prepared = _prepare(source, task, configs, seeds, config, stores)
    config = dataclasses.replace(config, trials=len(prepared.queued), study=prepared.name)
    studies.execute(prepared, config)
    fits = _fits(prepared.name, prepared.storage)
    if len(fits) < 2:
        raise UsageError(
            f"study {prepared.name!r}: {len(fits)} fit(s) completed of {len(prepared.queued)}; "
            f"an ensemble needs 2 or more (see `tuner trials --study {prepared.name}`)"
        )
    return prepared, fits


def _configs(
    source: optuna.Study,
    task: Task,
    seeds: int,
    top: int | None,
    trials: str | None,
    tracking_uri: str,
    storage: str,
) -> tuple[list[Trial], list[str]]:
    """The trials to train again, best first (the best alone unless `top` or `trials` say
    otherwise: then the members `tuner ensemble --top/--trials` would take), and why better
    trials were skipped."""
    if trials is None and (top or 1) == 1:
        chosen = best_trial(source)
        if chosen is None or keys.SETTINGS not in trial_attrs.of(chosen):
            raise UsageError(f"--study {source.study_name!r}: no complete trial to train again")
        configs, skipped = [chosen], []
    else:
        members, skipped = choose_members(
            source, task, top or 0, trials, tracking_uri, storage, weights=False
        )
        configs = [member.trial for member in members]
    if not 2 <= len(configs) * seeds <= MOST_SEEDS:
        raise UsageError(
            f"--seeds {seeds}: {len(configs) * seeds} fresh fit(s) of {len(configs)} trial(s); "
            f"expected 2 to {MOST_SEEDS} fresh fits in all"
        )
    return configs, skipped


def _prepare(
    source: optuna.Study,
    task: Task,
    configs: list[Trial],
    seeds: int,
    config: studies.SearchConfig,
    stores: tuple[str, str, str | None],
) -> studies.Prepared:
    """The fits' study, checked as any study is: the chosen trials' settings, their data
    read again, the fits queued; nothing is created here."""
    data_args = study_data_args(source)
    data = task.load_data(data_args)
    if task.check_ensemble is not None:  # before any fit trains
        task.check_ensemble(data, _settings(configs[0]))
    space = _fits_space(source, task, configs)
    numbers = "-".join(str(t.number) for t in configs)
    name = clean_name(f"{source.study_name}-t{numbers}-seeds")
    model_name = clean_name(f"{source.user_attrs.get(keys.MODEL_NAME) or source.study_name}-seeds")
    draft = studies.Prepared(
        task, data_args, data, space, name, *stores, [], model_name=model_name,
        lineage={keys.SOURCE_STUDY_TAG: source.study_name},
        queued=_queued(source, configs, space, seeds),
    )  # fmt: skip
    prepared = studies.checked(draft, config, read_studies(draft.storage))
    swept = (source.user_attrs.get(keys.SETUP) or {}).get("data_sha256")
    if swept and swept != prepared.setup["data_sha256"]:
        raise UsageError(
            f"--study {source.study_name!r}: its data file {data_args['data']} changed since "
            f"the sweep; fits on other data would not be the chosen trials'"
        )
    return prepared


def _queued(
    source: optuna.Study, configs: list[Trial], space: SearchSpace, seeds: int
) -> tuple[tuple[dict, dict], ...]:
    """Each chosen trial's fits, seed by seed: a sweep stopped early still averages every
    configuration. A fit carries the run of the trial it trains again (`fit_of`)."""
    base = int(keys.study_attr(source, keys.SEED))
    varied = [spec.name for spec in space.params if spec is not SEED_PARAM]
    own = [({n: _settings(t)[n] for n in varied},
            {keys.FIT_OF: trial_attrs.of(t).get(keys.RUN_ID, "")}) for t in configs]  # fmt: skip
    return tuple(
        ({**params, SEED_PARAM.name: (base + k) % (MAX_SEED + 1)}, attrs)
        for k in range(1, seeds + 1)
        for params, attrs in own
    )


def _fits_space(source: optuna.Study, task: Task, configs: list[Trial]) -> SearchSpace:
    """The source's metric and tie-break; every setting the chosen trials share, fixed;
    each one they differ in, a choice among their values; the training seed. Every fit
    keeps its weights."""
    searched = parse_space(keys.study_attr(source, keys.SPACE), task.spec, source.study_name)
    each = [_settings(t) for t in configs]
    names = sorted(set().union(*each))
    varied = [k for k in names if len({repr(own.get(k)) for own in each}) > 1]
    for name in varied:
        if not all(isinstance(own.get(name), QUEUEABLE) for own in each):
            raise UsageError(f"--trials: the trials differ in {name}, which cannot be queued")
    choices = [ParamSpec(k, "categorical", choices=tuple(dict.fromkeys(o.get(k) for o in each)))
               for k in varied]  # fmt: skip
    return SearchSpace(
        searched.metric,
        searched.direction,
        (*choices, SEED_PARAM),
        {**{k: v for k, v in each[0].items() if k not in varied}, "keep_top": MOST_SEEDS},
        f"<fits of trials {', '.join(str(t.number) for t in configs)}>",
        tie_break=searched.tie_break,
    )


def _settings(trial: Trial) -> dict:
    """What the trial trained with, but its training seed."""
    return {k: v for k, v in trial_attrs.of(trial)[keys.SETTINGS].items() if k != SEED_PARAM.name}


def _fits(name: str, storage: str) -> list[Trial]:
    study = load_study(name, storage)
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
