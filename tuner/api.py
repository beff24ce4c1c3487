"""Python API for notebooks and scripts; the CLI calls these same functions.

Fine-tuning and prediction load torch and Lightning, so they are imported inside the
functions that need them: reading a study (`best`, `trials`, `compare`, `lineage`) does not
wait for them."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tuner import study as studies
from tuner.config import keys
from tuner.config import options as declared
from tuner.config.files import excerpt, output_file, output_folder
from tuner.config.goals import parse_constraints
from tuner.config.names import path_part
from tuner.config.settings import check_values
from tuner.contract.datafiles import is_frame, write_csv_atomically
from tuner.errors import UsageError, did_you_mean
from tuner.reports.ranking import beats, compare_studies, trials_table
from tuner.runtime.logs import silenced
from tuner.storage.locations import HOME, resolve_storage, resolve_tracking
from tuner.storage.studies import load_study
from tuner.study import SearchConfig, SearchResult
from tuner.tracking.checks import check_tracking_exists

INTERNAL = {"worker_index"}  # set by a launcher for its workers, not by a caller
READING = (declared.STUDY, declared.STORAGE, declared.TRACKING_URI)
# what run_search and finetune do not check themselves (they check their options)
_ANY_STUDY = dataclasses.replace(declared.STUDY, optional=True)  # default: named after the data
RUNNING = (*declared.STORES, _ANY_STUDY)

if TYPE_CHECKING:
    from tuner.models.export import ExportResult
    from tuner.models.finetune import FinetuneResult
    from tuner.models.lineage import Hop
    from tuner.models.topk import EnsembleResult


def search(
    task: str | None = None, trials: int = 20, *, model: type | None = None,
    datamodule: Any = None, data: Any = None, space: str | os.PathLike | None = None,
    study: str | None = None, max_epochs: int | None = None, folds: int | None = None,
    patience: int | None = None, settings: Mapping[str, Any] | None = None,
    timeout: float | None = None, sampler: str = "tpe", pruner: Any = "median", seed: int = 0,
    constraint: str | None = None, warm_start: str | None = None, warm_start_top: int = 3,
    workers: int = 1, devices: str = "auto", trials_per_device: int = 1,
    precision: str = "32-true", storage: str | None = None, tracking_uri: str | None = None,
    artifact_root: str | None = None, storage_proxy: str | None = None, max_failures: int = 5,
    heartbeat: int = 30, max_retries: int = 10, allow_changes: bool = False,
    quiet: bool = False, verbose: bool = False, overrides: Mapping[str, Any] | None = None,
) -> SearchResult:  # fmt: skip
    """Run or resume a study until it holds `trials` finished trials; the arguments are
    `tuner search`'s flags.

    task: a shipped task's name, or your own model's module (`mypkg.mytask`, a `.py`
        path); or give your LightningModule class as `model=` (and its LightningDataModule
        class, or a function of the data settings returning one, as `datamodule=`):
        docs/custom.md.
    data: the task's data options ({"data": "my.csv", "target": "a"}), a file path, or the
        data itself: a DataFrame (classification: also arrays (X, y)), with `study=`.
    max_epochs, folds, patience: the framework's common settings; any other setting of
        the task (hidden_size, horizon...) goes in `settings={...}` (`--set`).
    pruner: median, asha, hyperband, none, or an Optuna pruner object.
    quiet: print nothing (the result holds what the CLI would print).
    """
    given = _given(locals(), "task", "model", "datamodule")
    task = _task_reference(task, model, datamodule)
    _check_kinds({"task": (task, str), "space": (space, (str, os.PathLike)),
                  "settings": (settings, Mapping), "overrides": (overrides, Mapping)})  # fmt: skip
    options = _with_settings(_with_data(given))
    _check_data_keys(task, options.get("data"))
    check_values(options, RUNNING)
    return studies.run_search(_config(SearchConfig, task=task, **options))


def _given(arguments: Mapping[str, Any], *apart: str) -> dict[str, Any]:
    """A function's arguments as its config's options: those handled apart left out, and
    `data` only where given (the config's default is an empty mapping)."""
    return {
        k: v for k, v in arguments.items() if k not in apart and (k != "data" or v is not None)
    }


def _task_reference(task: str | None, model: type | None, datamodule: Any) -> str:
    """The --task form of what was given: a task name or module, or classes."""
    if (task is None) == (model is None):
        raise UsageError("give task='NAME' (or a module of your own), or model=YourModule")
    if model is None:
        if datamodule is not None:
            raise UsageError("datamodule= goes with model=, not with task=")
        return task  # type: ignore[return-value]
    from tuner.custom.loading import reference_of

    return reference_of(model, datamodule)


def check(task: str, space: str | None = None) -> list[Any]:
    """What your own model (`task`: its module or `.py` file) provides and what will not
    work with it, found by building it and running one validation batch; nothing is
    created. Each finding has a `topic`, a `text` and `refuses` (what it blocks, or "")."""
    from tuner.contract.registry import get_task, registered
    from tuner.custom.checks import inspect_model
    from tuner.custom.loading import load_parts

    _check_kinds({"task": (task, str), "space": (space, (str, os.PathLike))})
    if task in registered():
        raise UsageError(f"--check {task}: a shipped task; --check is for your own model")
    found = get_task(task)
    if not found.code:
        raise UsageError(f"--check {task}: its module defines TASK; --check reads a MODEL")
    parts = load_parts(task)
    return inspect_model(parts, found.spec, studies.search_space(space, found), {})


def _check_kinds(values: Mapping[str, tuple[Any, type | tuple[type, ...]]]) -> None:
    """Arguments given (not None) of the wrong kind, in one line instead of a TypeError."""
    for name, (value, kind) in values.items():
        if value is not None and not isinstance(value, kind):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise UsageError(f"{name}={excerpt(repr(value))}: expected {names}")


def _check_data_keys(task: str, data: Any) -> None:
    """`data={"dta": ...}` names no data option of the task: refused, not ignored (ignored,
    the task's shipped demo data would be searched instead)."""
    if not isinstance(data, Mapping):
        return
    from tuner.contract.registry import get_task

    known = sorted(get_task(task).data_keys())
    for key in data:
        if key not in known:
            raise UsageError(
                f"data[{excerpt(repr(key))}]: not a data option of task {task!r}"
                f"{did_you_mean(str(key), known)}; expected {', '.join(known)}"
            )


def _check_source(source: Any) -> None:
    if not isinstance(source, (str, os.PathLike)):
        raise UsageError(
            f"source={excerpt(repr(source))}: expected a checkpoint path, runs:/<id>, "
            f"models:/<name>@<alias> or study:<name>"
        )


COMMON = ("max_epochs", "folds", "patience")  # settings the API takes as arguments


def _with_settings(options: dict[str, Any]) -> dict[str, Any]:
    """`max_epochs=E` and the other common settings, with `settings={...}`, as the
    config's overrides (`--set`); one setting given twice with different values is
    refused rather than one silently winning."""
    merged = {**(options.pop("overrides", None) or {})}
    for name, value in (options.pop("settings", None) or {}).items():
        if merged.get(name, value) != value:
            raise UsageError(f"settings[{name!r}]={value!r} and overrides[{name!r}]="
                             f"{merged[name]!r} disagree; give one of them")  # fmt: skip
        merged[name] = value
    for name in COMMON:
        value = options.pop(name, None)
        if value is not None and merged.get(name, value) != value:
            raise UsageError(f"--{name.replace('_', '-')} {value} and --set {name}="
                             f"{merged[name]} disagree; give one of them")  # fmt: skip
        merged.update({} if value is None else {name: value})
    return {**options, "overrides": merged}


def _with_data(options: dict[str, Any]) -> dict[str, Any]:
    """`data=frame` as shorthand for `data={"data": frame}`."""
    data = options.get("data")
    if data is not None and not isinstance(data, (Mapping, str, os.PathLike, tuple, np.ndarray)):
        if not is_frame(data):
            raise UsageError(
                f"data={excerpt(repr(data))}: expected a file path, a DataFrame, arrays "
                f"(X, y) or a mapping of the task's data options"
            )
    if data is not None and not isinstance(data, Mapping):
        options = {**options, "data": {"data": data}}
    return options


def _config(kind: type, **options: Any) -> Any:
    """The config dataclass, or one clear line for an argument it does not take."""
    known = [field.name for field in dataclasses.fields(kind) if field.name not in INTERNAL]
    for name in options:
        if name not in known:
            raise UsageError(
                f"{name}: unknown option{did_you_mean(name, known)}; expected one of "
                f"{', '.join(known)}"
            )
    return kind(**options)


def best(
    study: str,
    storage: str | None = None,
    tracking_uri: str | None = None,
    constraint: str | None = None,
) -> SearchResult:
    """The best trial of a study: value, params, MLflow run, checkpoint URI; with
    `constraint` ("latency_ms<=5,params<=20000"), the best whose model meets it; of a
    multi-objective study, its Pareto front too."""
    check_values(locals(), READING)
    limits = parse_constraints(constraint, "--constraint")
    loaded = load_study(study, storage)
    uri = resolve_tracking(tracking_uri)[0]
    found = studies.summarize(loaded, uri, resolve_storage(storage), limits)
    return _with_ensembles(found, loaded)


def _with_ensembles(found: SearchResult, study: Any) -> SearchResult:
    """The study's ensembles that score better than its best trial on validation."""
    held = (study.user_attrs.get(keys.ENSEMBLES) or {}).items()
    better = [(model, float(value)) for model, value in held if found.best_value is not None
              and beats(value, found.best_value, found.direction)]  # fmt: skip
    return dataclasses.replace(found, ensembles=better)


def ensemble(
    study: str,
    top: int | None = None,
    trials: str | None = None,
    seeds: int | None = None,
    combine: str = "",
    storage: str | None = None,
    tracking_uri: str | None = None,
    task: str | None = None,
    quiet: bool = False,
) -> EnsembleResult:
    """One model averaging the study's best trials (top=K, 3 by default, or trials="3,7,9";
    combine "median" for forecasts), scored and registered as `<model>-ensemble`; or, with
    seeds=N, fresh fits: the best trial's configuration (or the top K's, or the named
    trials') trained N times afresh each, averaged (`<model>-seeds-ensemble`). A study of
    your own model needs `task`, its module (as --task: the study's record never chooses
    which code runs)."""
    check_values(locals(), (*READING, *declared.ENSEMBLE))
    where = {"combine": combine, "storage": storage, "tracking_uri": tracking_uri, "task": task}
    load_study(study, storage)  # a wrong name is refused before torch is imported
    with silenced(quiet):
        if seeds is None:
            from tuner.models.topk import build_ensemble

            return build_ensemble(study, top=3 if top is None else top, trials=trials, **where)
        from tuner.models.seeds import build_seed_ensemble

        return build_seed_ensemble(study, seeds, top=top, trials=trials, quiet=quiet, **where)


def trials(study: str, storage: str | None = None) -> pd.DataFrame:
    """Every trial of a study as a table."""
    check_values(locals(), READING)
    return trials_table(load_study(study, storage))


def finetune(
    source: str, *, data: Any = None, task: str | None = None, lr: float | None = None,
    max_epochs: int | None = None, freeze_layers: int | None = None, patience: int = 5,
    trials: int | None = None, space: str | None = None, study: str | None = None,
    model_name: str | None = None, seed: int = 0, warm_start: str | None = None,
    warm_start_top: int = 3, storage: str | None = None, tracking_uri: str | None = None,
    artifact_root: str | None = None, allow_changes: bool = False, quiet: bool = False,
) -> FinetuneResult:  # fmt: skip
    """Fine-tune SRC (a checkpoint path, runs:/, models:/ or study:) on `data` (the
    task's data options, a file path or a DataFrame; default: the data it trained on); the
    arguments are `tuner finetune`'s flags. With `trials`, a small search around its
    learning rate; `task` (your own model's module) is needed for a model of your own."""
    options = _with_data(_given(locals(), "source"))  # first: before the imports below
    from tuner.models.finetune import FinetuneConfig
    from tuner.models.finetune import finetune as run_finetune

    _check_source(source)
    check_values(options, RUNNING)
    return run_finetune(_config(FinetuneConfig, source=source, **options))


def predict(
    source: str,
    data: Any = None,
    out: str | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    task: str | None = None,
    options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Predictions of SRC on `data` (default: its training data) as a table: the task's data
    options, or the data itself (a DataFrame). `options` are the task's predict options
    (proba for classification; prompt, length, temperature, seed for charlm)."""
    from tuner.models.predict import predict as run_predict

    _check_source(source)
    _check_kinds({"task": (task, str), "options": (options, Mapping)})
    check_values(locals(), (declared.STORAGE, declared.TRACKING_URI, declared.OUT))
    if out is not None:
        output_file(out)
    data = _with_data({"data": data})["data"]
    return run_predict(source, data, out, storage, tracking_uri, task, options)


def export(
    source: str,
    format: str = "onnx",
    tolerance: float = 0.01,
    out: str | None = None,
    name: str | None = None,
    register: bool = True,
    storage: str | None = None,
    tracking_uri: str | None = None,
    task: str | None = None,
    data: Any = None,
    quiet: bool = True,
) -> ExportResult:
    """SRC as ONNX (`format="onnx"`) or int8 graphs, checked against the float model on its
    validation figure (refused past `tolerance`, relative), timed on one thread, and
    registered as a version of `<name>-<format>` (default name: the source's model or
    study); `out` keeps the files (without it, they are removed when Python exits). `data`:
    the data options the model was trained with, where they changed (as `predict` takes
    them). docs/export.md."""
    from tuner.models.export import check_form
    from tuner.models.export import export as run_export

    _check_source(source)
    _check_kinds({"format": (format, str), "task": (task, str), "name": (name, str),
                  "register": (register, bool), "out": (out, (str, os.PathLike)),
                  "quiet": (quiet, bool)})  # fmt: skip
    check_values(locals(), (declared.STORAGE, declared.TRACKING_URI))
    check_form(format.lower(), tolerance, name or "")
    if out is not None and output_folder(out).is_dir() and any(Path(out).iterdir()):
        raise UsageError(f"--out {out}: holds files already; expected a new or empty folder")
    data = _with_data({"data": data})["data"] if data is not None else None
    return run_export(source, format.lower(), tolerance, out, name or "", register, storage,
                      tracking_uri, task, data, quiet)  # fmt: skip


def lineage(ref: str, tracking_uri: str | None = None, storage: str | None = None) -> list[Hop]:
    """The chain of runs from a model (models:/, runs:/, study:) back to the study that
    first trained it."""
    from tuner.models.lineage import lineage as follow_lineage

    _check_source(ref)
    check_values(locals(), READING[1:])
    uri = resolve_tracking(tracking_uri)[0]
    check_tracking_exists(uri)
    return follow_lineage(ref, uri, resolve_storage(storage))


def report(
    study: str, out: str | None = None, storage: str | None = None, tracking_uri: str | None = None
) -> Path:
    """Write the study's report (PNGs + report.html) and log it on the study's parent run."""
    check_values(locals(), (*READING, declared.OUT))
    if out is not None:
        output_folder(out)
    from tuner.models.showcase import best_model_views
    from tuner.reports.plots import write_report
    from tuner.tracking import TrackingStore

    studies.quiet_libraries()  # MLflow's download bar while the best model is read
    loaded = load_study(study, storage)
    uri = resolve_tracking(tracking_uri)[0]
    check_tracking_exists(uri)
    folder = Path(out) if out else HOME / "reports" / path_part(study)
    views = best_model_views(loaded, uri, resolve_storage(storage))
    page = write_report(loaded, folder, uri, views=views)
    parent = loaded.user_attrs.get(keys.PARENT_RUN_ID)
    if parent:
        TrackingStore(uri).log_artifacts(parent, folder, "report")
    return page


def compare(names: list[str], out: str | None = None, storage: str | None = None) -> pd.DataFrame:
    """Side-by-side table of studies (also written as CSV to `out`)."""
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise UsageError(f"names={excerpt(repr(names))}: expected a list of study names")
    check_values(locals(), (declared.OUT, declared.STORAGE))
    if out:
        output_file(out)
    table = compare_studies([load_study(name, storage) for name in names])
    if out:
        write_csv_atomically(table, Path(out))
    return table
