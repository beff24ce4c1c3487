"""Resolve a model source (file | runs:/ | models:/ | study:) to a local checkpoint file
and the lineage facts that say where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner.config import keys, trial_attrs
from tuner.contract.datafiles import sha256_of
from tuner.contract.registry import get_task
from tuner.contract.task import Task
from tuner.errors import CheckpointError, UsageError
from tuner.reports.ranking import best_trial
from tuner.storage.studies import load_study
from tuner.tracking import TrackingStore, pyfunc_model
from tuner.tracking.checks import check_tracking_exists


@dataclass(frozen=True)
class Source:
    path: Path
    lineage: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedSource:
    source: Source
    payload: dict[str, Any]
    task: Task


def load_source(
    source: str, tracking_uri: str, storage: str, task: str | None = None
) -> LoadedSource:
    """Resolve SRC, load its checkpoint safely and find its task (or refuse another task).

    The checkpoint's task must be a registered one: a module path is only taken from the
    user's own --task flag, never from a file (a file must not choose which code runs)."""
    asked = get_task(task) if task else None
    resolved = resolve_source(source, tracking_uri, storage)
    from tuner.contract.checkpoints import load_checkpoint  # torch: only when a model is loaded

    payload = load_checkpoint(resolved.path, task=asked.name if asked else None)
    if asked is not None:
        return LoadedSource(resolved, payload, asked)
    try:
        found = get_task(payload["task"], allow_module=False)
    except UsageError as exc:
        raise CheckpointError(
            f"{source}: checkpoint of task {payload['task']!r}, which cannot "
            f"be loaded here ({exc})"
        ) from None
    return LoadedSource(resolved, payload, found)


def data_args_for(payload: dict[str, Any], given: Mapping[str, Any], task: Task) -> dict[str, Any]:
    """The data options for a loaded model: the ones it was trained with, unless --data
    names new data, whose options (columns, speakers...) are its own; flags given now
    win either way. An option the model's task does not take is refused."""
    given = {key: value for key, value in given.items() if value is not None}
    known = task.data_keys()
    for key in given:
        if key not in known:
            raise UsageError(
                f"--{key.replace('_', '-')}: task {task.name!r} takes no such data option; "
                f"it takes {', '.join('--' + k.replace('_', '-') for k in known)}"
            )
    if given.get("data") is not None:
        return given
    stored = payload["meta"].get("data_args", {})
    stored = {k: v for k, v in stored.items() if k in known and isinstance(v, str)}
    return {**stored, **given}


def resolve_source(source: str, tracking_uri: str, storage: str) -> Source:
    """A local checkpoint path for SRC, plus tags recording it (sha256, run, model, study).

    A study's best model is an MLflow Model with the checkpoint inside; a run or version
    logged before that keeps its checkpoint under the run's checkpoint/ folder, and a local
    `.ckpt` file or a downloaded model folder works too."""
    if not source.startswith(("runs:/", "models:/", "study:")):
        path = _local_checkpoint(source)
        return Source(path, {keys.SOURCE_TAG: source, keys.SOURCE_SHA_TAG: sha256_of(path)})
    check_tracking_exists(tracking_uri)
    store = TrackingStore(tracking_uri)
    if source.startswith("runs:/"):
        lineage = {"source_run_id": source[len("runs:/") :].strip("/")}
    elif source.startswith("models:/"):
        lineage = model_version_tags(store, source)
    else:
        lineage = study_best_run(source[len("study:") :], storage)
    tags = store.run_tags(lineage["source_run_id"])
    if tags is None:
        raise CheckpointError(
            f"--from {source!r}: no MLflow run {lineage['source_run_id']!r} in this tracking store"
        )
    path = _download_checkpoint(store, lineage, source)
    lineage = {"source": source, "source_sha256": sha256_of(path), **lineage}
    lineage.setdefault("source_study", tags.get(keys.STUDY_TAG, ""))
    lineage["root_study"] = tags.get(keys.ROOT_STUDY_TAG) or lineage["source_study"]
    return Source(path, {f"{keys.TAG}{k}": v for k, v in lineage.items() if v})


def _local_checkpoint(source: str) -> Path:
    """A checkpoint file, or the checkpoint inside a downloaded MLflow Model folder."""
    path = Path(source)
    if path.is_dir() and (path / pyfunc_model.MLMODEL).is_file():
        return pyfunc_model.checkpoint_in(path, source)
    if not path.is_file():
        raise CheckpointError(
            f"--from {source!r}: no such checkpoint file or model folder (expected a "
            f"path, runs:/<id>, models:/<name>/<version>, "
            f"models:/<name>@<alias> or study:<name>)"
        )
    return path


def _download_checkpoint(store: TrackingStore, lineage: dict[str, str], source: str) -> Path:
    run_id = lineage["source_run_id"]
    model_id = lineage.get("source_model_id") or store.model_of_run(run_id)
    if model_id:
        lineage["source_model_id"] = model_id
        return pyfunc_model.checkpoint_in(store.download_model(model_id), source)
    path = store.download_checkpoint(run_id)  # logged before models were MLflow Models
    if path is None:
        raise CheckpointError(
            f"--from {source!r}: run {run_id} kept no weights (a study keeps those of its "
            f"top keep_top trials, 5 by default, when they end)"
        )
    return path


def model_version_tags(store: TrackingStore, source: str) -> dict[str, str]:
    """models:/<name>/<version> or models:/<name>@<alias>."""
    ref = source[len("models:/") :]
    name, _, version = ref.partition("/")
    name, _, alias = name.partition("@")
    if not name or not (version or alias):
        raise CheckpointError(
            f"--from {source!r}: expected models:/<name>/<version> or models:/<name>@<alias>"
        )
    try:
        found, run_id, model_id = store.model_version(name, version, alias)
    except KeyError:
        what = f"alias {alias!r}" if alias else f"version {version!r}"
        raise CheckpointError(
            f"--from {source!r}: registered model {name!r} has no "
            f"{what} (or no such model) in this tracking store"
        ) from None
    found_ids = {"source_model_id": model_id} if model_id else {}
    return {"source_model": name, "source_version": found, "source_run_id": run_id, **found_ids}


def study_best_run(name: str, storage: str) -> dict[str, str]:
    """The study's best trial and its MLflow run (`study:NAME` sources and lineage)."""
    try:
        study = load_study(name, storage)
    except UsageError as exc:
        raise CheckpointError(f"--from study:{name}: {exc}") from None
    best = best_trial(study)
    if best is None:
        raise CheckpointError(f"--from study:{name}: the study has no complete trial yet")
    run_id = trial_attrs.of(best).get(keys.RUN_ID)
    if not run_id:
        raise CheckpointError(f"--from study:{name}: best trial {best.number} has no MLflow run")
    found = {"source_study": name, "source_trial": str(best.number), "source_run_id": run_id}
    model_id = trial_attrs.of(best).get(keys.MODEL_ID)
    return {**found, "source_model_id": model_id} if model_id else found
