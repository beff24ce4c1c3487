"""Check every input of a search before anything is created: its options, the task, the
space, the data and the stores; name the study."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import optuna

from tuner.config import keys, options
from tuner.config.budget import batch_cap, capped_epochs
from tuner.config.goals import parse_constraints
from tuner.config.names import check_name, clean_name
from tuner.config.overrides import check_overrides
from tuner.config.settings import check_values
from tuner.config.space import SearchSpace
from tuner.config.space_file import load_space, parse_space
from tuner.contract.datafiles import in_memory
from tuner.contract.registry import get_task
from tuner.contract.task import Task
from tuner.errors import UsageError
from tuner.runtime import devices
from tuner.storage.locations import resolve_storage, resolve_tracking
from tuner.storage.proxy import check_proxy, parse_address
from tuner.storage.studies import read_studies
from tuner.study._config import Prepared, SearchConfig
from tuner.study.resume import check_choices_kept, check_unchanged, study_setup
from tuner.study.samplers import check_sampler
from tuner.study.warmstart import check_sources, parse_sources
from tuner.tracking.checks import check_artifact_home, check_tracking


def default_data_path(task: Task) -> str | None:
    """The task's shipped demo data (a path the task gives), used when --data is not."""
    return str(task.default_data) if task.default_data else None


def default_space_path(task: Task) -> str:
    return str(resources.files("tuner.search_spaces") / f"{task.name}.yaml")


def search_space(given: str | None, task: Task) -> SearchSpace:
    """--space FILE, else the task's own: its `default_space` (a user's model: the
    module's, or derived from its constructor), else search_spaces/<task>.yaml."""
    if given is None and isinstance(task.default_space, Mapping):
        return parse_space(dict(task.default_space), task.spec, f"{task.name} (its space)")
    path = given or task.default_space or default_space_path(task)
    if not given and not Path(path).is_file():
        raise UsageError(
            f"--task {task.name!r} has no default search space "
            f"(search_spaces/{task.name}.yaml); pass --space FILE"
        )
    return load_space(path, task.spec)


GENERIC_STEMS = ("manifest", "data", "train", "metadata")


def study_name_for(task: Task, data: Mapping[str, Any], existing: Mapping[str, Any]) -> str:
    """Derived from task + data file, so rerunning the same command finds the same study;
    cleaned into the name rule (a study stored under the raw form before is kept)."""
    label = Path(task.name).stem if task.name.endswith(".py") else task.name
    raw = f"{label}-{data_stem(data)}"
    return raw if raw in existing else clean_name(raw)


def data_stem(data: Mapping[str, Any]) -> str:
    """The data file's stem; a file named like every other (manifest.csv, data.csv) is
    named by its folder."""
    source = data.get("data")
    path = Path(str(source if source is not None and not in_memory(source) else "data"))
    return path.parent.name if path.stem in GENERIC_STEMS and path.parent.name else path.stem


def prepare(config: SearchConfig) -> Prepared:
    """Check every input before anything is created (study, experiment, run, file)."""
    check_config(config)
    task = get_task(config.task)
    given = config.data.get("data")
    data_args = {**config.data, "data": default_data_path(task) if given is None else given}
    space = search_space(config.space, task)
    space = space.for_accelerator(devices.pick_accelerator(config.devices))
    space = space.with_fixed(check_overrides(config.overrides, task.spec))
    space = space.with_constraints(parse_constraints(config.constraint, "--constraint"))
    space, objective_notes = _multi_objective(space, config, task)
    data = task.load_data(data_args)
    space, notes = task.fit_space(space, data)
    notes = [*sized_for(space), *objective_notes, *notes]
    storage = resolve_storage(config.storage)
    tracking_uri, artifact_root = resolve_tracking(config.tracking_uri, config.artifact_root)
    existing = read_studies(storage)
    if config.storage_proxy is not None:
        check_proxy(config.storage_proxy, lambda: _study_ids(read_studies(storage)))
    name = config.study or study_name_for(task, data_args, existing)
    draft = Prepared(task, data_args, data, space, name, storage, tracking_uri, artifact_root,
                     notes, model_name=name)  # fmt: skip
    return checked(draft, config, existing)


def checked(
    draft: Prepared,
    config: SearchConfig,
    existing: Mapping[str, optuna.study.StudySummary],
    source_sha: str | None = None,
) -> Prepared:
    """The checks every study passes before anything is created, the same for a search, a
    fine-tune and fresh fits: its setup (recorded with the precision `config` trains at)
    matches the study of that name, if any; its warm-start sources fit (a fine-tune's:
    fine-tunes of the same `source_sha`); the MLflow store answers and every host reaches
    its models."""
    space, capped = capped_epochs(draft.space, draft.task.defaults.get("max_epochs"))
    name, task = draft.name, draft.task
    setup = study_setup(space.to_dict(), draft.data_args, config.precision)
    check_existing_study(existing.get(name), name, task, space, setup, config.allow_changes)
    check_sources(parse_sources(config.warm_start), name, task.name, existing, source_sha)
    check_tracking(draft.tracking_uri)
    check_artifact_home(draft.tracking_uri, draft.artifact_root, name)
    capped += batch_cap()[1]
    return dataclasses.replace(draft, space=space, setup=setup, notes=[*draft.notes, *capped])


def _study_ids(studies: Mapping[str, optuna.study.StudySummary]) -> dict[str, int]:
    return {name: summary._study_id for name, summary in studies.items()}


def sized_for(space: SearchSpace) -> list[str]:
    """The study header's line on which device section of the space applies."""
    if not space.profile:
        return []
    return [
        f"search space sized for {space.profile.upper()} trials ({space.source}, its "
        f"{space.profile}: section)"
    ]


def _multi_objective(
    space: SearchSpace, config: SearchConfig, task: Task
) -> tuple[SearchSpace, list[str]]:
    """A multi-objective study trains every trial to the end (no pruning), so by default
    each trial gets half the epochs: the median pruner trains 43-50% of a sweep's epochs
    (benchmarks/RESULTS.md), so the sweep costs about what a pruned one does."""
    if not space.multi_objective:
        return space, []
    if config.sampler == "cmaes":
        raise UsageError(
            "--sampler cmaes: Optuna's CMA-ES optimises one objective, and this space names "
            f"{len(space.objectives)}; use tpe, random or gp"
        )
    names = ", ".join(o.metric for o in space.objectives)
    notes = [f"multi-objective study ({names}): Optuna keeps the Pareto front; no pruning"]
    epochs = space.fixed.get("max_epochs", task.defaults.get("max_epochs"))
    if "max_epochs" not in config.overrides and space.param("max_epochs") is None and epochs:
        halved = max(1, int(epochs) // 2)
        space = space.with_fixed({"max_epochs": halved})
        notes.append(f"max_epochs {epochs} -> {halved} per trial (pass --max-epochs to choose)")
    return space, notes


def check_config(config: SearchConfig) -> None:
    """The search's own options: declared once in tuner.config.options, checked for the CLI and
    the Python API alike."""
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    if not isinstance(config.pruner, str):
        values.pop("pruner")  # an Optuna pruner object, from the Python API
    check_values(values, options.SEARCH)
    check_sampler(config.sampler)
    if config.study is not None:
        check_name(config.study)
    elif in_memory(config.data.get("data")):
        raise UsageError(
            "data given in memory (a DataFrame or arrays) has no file name to name the study "
            "after; pass study='NAME'"
        )
    if config.precision == "16-mixed" and devices.pick_accelerator(config.devices) == "cpu":
        raise UsageError(
            "--precision 16-mixed needs a GPU (none is used here); on CPU use "
            "bf16-mixed or 32-true"
        )
    devices.plan_workers(config.workers, config.devices, config.trials_per_device)
    if config.workers > config.trials:
        raise UsageError(
            f"--workers {config.workers}: more than the {config.trials} trials the study "
            f"should hold (--trials); at most {config.trials}"
        )
    if config.storage_proxy is not None:
        parse_address(config.storage_proxy)


def check_existing_study(
    summary: optuna.study.StudySummary | None,
    name: str,
    task: Task,
    space: SearchSpace,
    setup: Mapping[str, Any],
    allow_changes: bool = False,
) -> None:
    """A study name reused for another task, metric or direction would mix results, and
    one resumed with other settings or data would rank two setups as one search."""
    if summary is None:
        return
    attrs = summary.user_attrs
    wanted = {keys.TASK: task.name, keys.METRIC: space.metric, keys.DIRECTION: space.direction}
    for key, value in wanted.items():
        if key in attrs and attrs[key] != value:
            raise UsageError(
                f"--study {name!r}: this study was made with {key} {attrs[key]!r}, "
                f"not {value!r}; choose another --study name"
            )
    made = [d.name.lower() for d in summary.directions]
    if made != space.directions:  # Optuna keeps a study's objectives for good
        raise UsageError(
            f"--study {name!r}: this study optimises {len(made)} objective(s) "
            f"({', '.join(made)}), the space names {len(space.directions)}; choose another "
            f"--study name (--warm-start can start it from this one)"
        )
    if not allow_changes:
        check_unchanged(name, attrs.get(keys.SETUP), setup)
    check_choices_kept(name, attrs.get(keys.SETUP), setup)
