"""Fine-tune from a checkpoint: restore architecture and weights, train on new data with a
smaller learning rate (or tune how), report the metric before -> after, record lineage.

A fine-tune is a study like any search (parent run + one nested run per trial), whose
trials start from the source weights instead of a fresh model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import lightning.pytorch as pl

from tuner import study as studies
from tuner.config import keys, options
from tuner.config.names import check_name, clean_name
from tuner.config.settings import Setting, check_values
from tuner.config.space import ParamSpec, SearchSpace
from tuner.config.space_file import load_space
from tuner.contract.checkpoints import restore_model
from tuner.contract.datafiles import in_memory
from tuner.contract.members import carried
from tuner.contract.task import Task
from tuner.errors import UsageError
from tuner.models.scratch import scratch_study, train_from_scratch
from tuner.models.sources import LoadedSource, data_args_for, load_source
from tuner.reports.ranking import beats
from tuner.runtime.logs import silenced
from tuner.storage.locations import resolve_storage, resolve_tracking
from tuner.storage.studies import read_studies
from tuner.tracking import TrackingStore
from tuner.training import loop

# Why a fraction: the source weights already sit near a good minimum; the source's own lr
# would take steps big enough to undo what they learnt before the new data can refine them.
LR_FRACTION = 0.1
FREEZE_LAYERS = Setting("freeze_layers", 0, "LSTM layers kept as the source had them", low=0)


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything `tuner finetune` takes."""

    source: str
    task: str | None = None  # when given, a checkpoint of another task is refused
    data: Mapping[str, Any] = field(default_factory=dict)
    lr: float | None = None
    max_epochs: int | None = None
    freeze_layers: int | None = None
    patience: int = 5
    trials: int | None = None
    space: str | None = None
    study: str | None = None
    model_name: str | None = None
    seed: int = 0
    storage: str | None = None
    tracking_uri: str | None = None
    artifact_root: str | None = None
    quiet: bool = False
    allow_changes: bool = False  # add to a fine-tune study run with other settings before
    warm_start: str | None = None  # with trials: earlier fine-tunes of the same source
    warm_start_top: int = 3


@dataclass(frozen=True)
class FinetuneResult:
    metric: str
    before: float
    after: float | None
    search: studies.SearchResult
    lineage: dict[str, str]
    held: float | None = None  # the model now at `<model>@best`, on the same rows
    bar: float | None = None  # what a fine-tune had to beat to take `@best`
    scratch: float | None = None  # the same architecture and epochs from fresh weights


def finetune(config: FinetuneConfig) -> FinetuneResult:
    """Check everything (flags, source, data, stores), report the source's metric on the
    new data, then run the fine-tune as a study."""
    studies.quiet_libraries()
    with silenced(config.quiet):
        return _finetune(config)


def _finetune(config: FinetuneConfig) -> FinetuneResult:
    check_config(config)
    storage = resolve_storage(config.storage)
    tracking_uri, artifact_root = resolve_tracking(config.tracking_uri, config.artifact_root)
    loaded = load_source(config.source, tracking_uri, storage, config.task)
    search_config = studies.SearchConfig(
        task=loaded.task.name,
        seed=config.seed,
        quiet=config.quiet,
        pruner="median" if config.trials else "none",
        allow_changes=config.allow_changes,
        warm_start=config.warm_start,
        warm_start_top=config.warm_start_top,
    )
    prepared = _prepare(config, search_config, loaded, storage, (tracking_uri, artifact_root))
    scratch = scratch_study(prepared, search_config, float(loaded.payload["settings"]["lr"]))
    metric, task = prepared.space.metric, loaded.task
    before = evaluate(restore_model(loaded.payload, task), task, prepared.data,
                      prepared.space.fixed, metric)  # fmt: skip
    print(f"{metric} of the source model on the new data's validation split: {before:.4f}")
    held = _holder_figure(prepared, tracking_uri, storage)
    prepared = dataclasses.replace(prepared, bar=_bar(before, held, prepared.space.direction))
    finished = studies.count_finished_by_name(prepared.name, storage)
    # a plain fine-tune adds one run each time
    search_config = dataclasses.replace(search_config, trials=config.trials or finished + 1)
    result = studies.execute(prepared, search_config)
    fresh = train_from_scratch(scratch, search_config)
    _record_before_after(tracking_uri, result, metric, before, fresh)
    return FinetuneResult(metric, before, result.best_value, result, loaded.source.lineage,
                          held, prepared.bar, fresh)  # fmt: skip


def _holder_figure(prepared: studies.Prepared, tracking_uri: str, storage: str) -> float | None:
    """The fine-tuned model's `@best` from an earlier fine-tune (maybe on other data),
    scored on this one's validation rows; None when there is none yet."""
    name = prepared.model_name
    try:
        TrackingStore(tracking_uri).model_version(name, alias="best")
    except KeyError:
        return None
    held = load_source(f"models:/{name}@best", tracking_uri, storage, prepared.task.name)
    model = restore_model(held.payload, held.task)
    return evaluate(model, held.task, prepared.data, prepared.space.fixed, prepared.space.metric)


def _bar(before: float, held: float | None, direction: str) -> float:
    """What a fine-tuned model must beat to take `@best`: the source, and the holder."""
    if held is None or beats(before, held, direction):
        return before
    return held


def check_config(config: FinetuneConfig) -> None:
    """The fine-tune's own options, declared in tuner.config.options (CLI and API alike)."""
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    check_values(values, options.FINETUNE)
    if config.study is not None:
        check_name(config.study)
    if config.model_name is not None:
        check_name(config.model_name, "--model-name")
    if config.warm_start and not config.trials:
        raise UsageError("--warm-start needs --trials: a plain fine-tune searches nothing")


def finetune_space(config: FinetuneConfig, payload: dict[str, Any], task: Task) -> SearchSpace:
    """Fixed: the source's settings (architecture, windows) and whatever the source model
    learnt from its data that is also a task setting (a speech model's vocabulary: the new
    data's labels must be encoded the way the model emits them). Searched with --trials:
    lr, epochs, frozen layers and dropout, around the source's own values."""
    fixed = _fixed_settings(config, payload, task)
    metric = payload["meta"].get("metric", task.metric)
    direction = payload["meta"].get("direction", task.direction)
    if config.space:
        known = dataclasses.replace(task.spec, settings=(*task.spec.settings, FREEZE_LAYERS))
        user = load_space(config.space, known)
        return SearchSpace(
            user.metric, user.direction, user.params, {**fixed, **user.fixed}, user.source
        )
    if not config.trials:
        return SearchSpace(metric, direction, (), fixed, "<finetune>")
    source_lr, layers = float(payload["settings"]["lr"]), int(fixed.get("num_layers", 1))
    params = tuple(
        param
        for param in (
            ParamSpec("lr", "float", low=source_lr / 100, high=source_lr, log=True),
            ParamSpec("freeze_layers", "int", low=0, high=layers),
            ParamSpec("dropout", "float", low=0.0, high=0.5),
            ParamSpec("max_epochs", "int", low=5, high=max(6, fixed["max_epochs"])),
        )
        if param.name in task.spec.table or param.name == "freeze_layers"  # a user's model
    )
    given = {
        "lr": config.lr,
        "max_epochs": config.max_epochs,
        "freeze_layers": config.freeze_layers,
    }
    space = SearchSpace(metric, direction, params, fixed, "<finetune>")
    return space.with_fixed({k: v for k, v in given.items() if v is not None})


def _fixed_settings(config: FinetuneConfig, payload: dict[str, Any], task: Task) -> dict[str, Any]:
    learnt = payload.get("hyper_parameters", {})
    settings = {**payload["settings"], **{k: learnt[k] for k in task.defaults if learnt.get(k)}}
    if "lr" not in settings:  # a user's model (docs/custom.md)
        raise UsageError(
            f"--from {config.source!r}: its model takes no `lr` argument; a fine-tune trains "
            f"at a lower learning rate than the source, so its constructor must take one"
        )
    source_lr = float(settings["lr"])
    fixed = {
        **settings,
        "lr": config.lr if config.lr is not None else source_lr * LR_FRACTION,
        "max_epochs": config.max_epochs or int(settings["max_epochs"]),
        "freeze_layers": config.freeze_layers or 0,
        "patience": config.patience,
    }
    if "folds" in task.defaults:  # before -> after compares the new data's one hold-out
        fixed["folds"] = 1
    layers = int(settings.get("num_layers", 1))  # a user's model: its own check counts them
    frozen = fixed["freeze_layers"]
    if frozen < 0 or ("num_layers" in settings and frozen > layers):
        raise UsageError(
            f"--freeze-layers {fixed['freeze_layers']}: the source model has "
            f"{layers} LSTM layer(s); expected 0 to {layers}"
        )
    return fixed


def _prepare(
    config: FinetuneConfig,
    search_config: studies.SearchConfig,
    loaded: LoadedSource,
    storage: str,
    tracking: tuple[str, str | None],
) -> studies.Prepared:
    """The new data, the fine-tune's space and names, checked as any study is."""
    payload, task = loaded.payload, loaded.task
    data_args = data_args_for(payload, config.data, task)
    if data_args.get("data") is None and not task.code:  # a user's data module reads its own
        raise UsageError(
            f"--from {config.source!r}: the checkpoint names no data file (its data was given in "
            f"memory, or it does not say); pass --data FILE (in Python: data=...)"
        )
    if in_memory(data_args.get("data")) and config.study is None:
        raise UsageError("data given in memory has no file name to name the study; pass study=")
    data = task.load_data(data_args)
    if task.fits_model is not None:
        task.fits_model(payload["hyper_parameters"], data)
    space, _ = task.fit_space(finetune_space(config, payload, task), data)
    lineage, name, model_name = _names(config, loaded, data_args)

    def make_model(settings: Mapping[str, Any], datamodule: Any) -> pl.LightningModule:
        return build_for_finetune(payload, settings, task)

    draft = studies.Prepared(
        task, data_args, data, space, name, storage, *tracking, [],
        model_name=model_name, lineage=lineage, make_model=make_model,
    )  # fmt: skip
    existing = read_studies(storage)
    return studies.checked(draft, search_config, existing, lineage[keys.SOURCE_SHA_TAG])


def _names(
    config: FinetuneConfig, loaded: LoadedSource, data_args: Mapping[str, Any]
) -> tuple[dict[str, str], str, str]:
    """(lineage tags, study name, model name): named after the source, cleaned into the
    name rule (the source's study name comes from a file or a store, not from the user)."""
    lineage = loaded.source.lineage
    meta_study = str(loaded.payload["meta"].get("study") or loaded.task.name)
    root = clean_name(lineage.get(keys.ROOT_STUDY_TAG) or meta_study)
    parent = lineage.get(keys.SOURCE_STUDY_TAG) or root
    name = config.study or clean_name(f"{parent}-ft-{studies.data_stem(data_args)}")
    model_name = config.model_name or clean_name(f"{root}-finetuned")
    return {**lineage, keys.ROOT_STUDY_TAG: root}, name, model_name


def build_for_finetune(
    payload: dict[str, Any], settings: Mapping[str, Any], task: Task
) -> pl.LightningModule:
    """The source model built with the fine-tune's lr and dropout (through its constructor,
    so its hparams, dropout layers and LSTM agree), its weights loaded, the first
    `freeze_layers` LSTM layers frozen."""
    new = {"lr": float(settings["lr"])}
    if "dropout" in settings:
        new["dropout"] = float(settings["dropout"])
    model = restore_model(payload, task, rebuilt_with=new)
    frozen = int(settings.get("freeze_layers") or 0)
    for member in (model, *carried(model)) if frozen else ():
        backbone = task.backbone(member)
        if backbone is None:
            raise UsageError(f"--freeze-layers: {type(model).__name__} has no LSTM backbone")
        backbone.freeze_layers(frozen)
    return model.train()


def evaluate(
    model: pl.LightningModule, task: Task, data: Any, settings: Mapping[str, Any], metric: str
) -> float:
    """The model's `metric` on the validation split of `data`."""
    datamodule = task.build_datamodule(data, settings)
    if task.adopt is not None:
        task.adopt(model, datamodule)
    metrics = loop.evaluate(model, datamodule.val_dataloader(), "val")
    if metric not in metrics:
        raise UsageError(f"metric {metric!r} is not logged by task {task.name!r}")
    return metrics[metric]


def _record_before_after(
    tracking_uri: str,
    result: studies.SearchResult,
    metric: str,
    before: float,
    scratch: float | None,
) -> None:
    store = TrackingStore(tracking_uri)
    metrics = {f"before_{metric}": before}
    if scratch is not None:
        metrics[f"scratch_{metric}"] = scratch
    if result.best_value is not None:
        metrics[f"after_{metric}"] = result.best_value
    for run_id in filter(None, (result.parent_run_id, result.best_run_id)):
        store.log_metrics(run_id, metrics)
