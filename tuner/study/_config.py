"""What a search takes (SearchConfig), what it has checked (Prepared) and what it returns
(SearchResult): plain records, shared by the verbs of the study package."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna

from tuner.config.names import path_part
from tuner.config.space import SearchSpace
from tuner.contract.task import Task


@dataclass(frozen=True)
class SearchConfig:
    """Everything `tuner search` takes; the CLI and the Python API both build one."""

    task: str
    data: Mapping[str, Any] = field(default_factory=dict)
    space: str | None = None
    trials: int = 20
    timeout: float | None = None
    study: str | None = None
    storage: str | None = None
    storage_proxy: str | None = None  # grpc://HOST:PORT of `tuner storage-proxy`
    tracking_uri: str | None = None
    artifact_root: str | None = None  # where models go; needed with a database tracking URI
    sampler: str = "tpe"
    pruner: str | optuna.pruners.BasePruner = "median"
    seed: int = 0
    overrides: Mapping[str, Any] = field(default_factory=dict)
    devices: str = "auto"
    quiet: bool = False
    verbose: bool = False
    max_failures: int = 5
    precision: str = "32-true"  # or 16-mixed / bf16-mixed (GPU), bf16-mixed (CPU)
    workers: int = 1
    trials_per_device: int = 1
    heartbeat: int = 30  # seconds; a trial silent for 4x this is failed and retried
    max_retries: int = 10  # retries of a trial whose worker died or was preempted
    warm_start: str | None = None  # earlier studies whose best configurations go first
    warm_start_top: int = 3
    constraint: str | None = None  # "latency_ms<=5,params<=20000": on the models' costs
    worker_index: int | None = None  # set inside a worker process of `--workers N`
    allow_changes: bool = False  # resume a study with other settings or data than before


@dataclass(frozen=True)
class SearchResult:
    study: str
    metric: str
    direction: str
    best_value: float | None
    best_trial: int | None
    best_params: dict[str, Any]
    best_run_id: str | None
    checkpoint_uri: str | None
    parent_run_id: str | None
    model_name: str
    model_version: str | None
    counts: dict[str, int]
    test_metrics: dict[str, float]
    baseline_keys: list[str]
    tracking_uri: str
    storage: str
    fold_values: list[float] = field(default_factory=list)  # the best trial's, with K > 1
    # a multi-objective study's Pareto front (or one asked for with constraints): one row
    # per member, best first objective first; the best trial above is its first row
    front: list[dict[str, Any]] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)  # those the best was picked under
    # the task's simple baselines on the best trial's validation rows (val_snaive_mae...)
    val_baselines: dict[str, float] = field(default_factory=dict)
    not_promoted: float | None = None  # the figure the best failed to beat for `@best`
    # ensembles of the study that beat its @best on the same validation rows: (URI, value)
    ensembles: list[tuple[str, float]] = field(default_factory=list)
    # why trials were not trained: a search constraint each broke (trial, reason)
    infeasible: list[tuple[int, str]] = field(default_factory=list)

    @property
    def model_uri(self) -> str | None:
        """The best model's registered version, as MLflow and `tuner predict` take it."""
        return f"models:/{self.model_name}/{self.model_version}" if self.model_version else None

    def trials(self) -> Any:
        """Every trial of the study as a pandas DataFrame (`tuner trials`)."""
        from tuner.reports.ranking import trials_table
        from tuner.storage.studies import load_study

        return trials_table(load_study(self.study, self.storage))


# ------------------------------------------------------------ locations


@dataclass(frozen=True)
class Prepared:
    """A checked search: nothing has been created yet when this exists."""

    task: Task
    data_args: dict[str, Any]
    data: Any
    space: SearchSpace
    name: str
    storage: str
    tracking_uri: str
    artifact_root: str | None
    notes: list[str]
    model_name: str = ""
    lineage: Mapping[str, str] = field(default_factory=dict)
    make_model: Callable[[Mapping[str, Any], Any], Any] | None = None
    setup: Mapping[str, Any] = field(default_factory=dict)
    # trials run first, once: (params, user attributes) pairs (a seed ensemble's fits)
    queued: tuple[tuple[Mapping[str, Any], Mapping[str, Any]], ...] = ()
    # the validation figure a kept model must beat to take `@best` (a fine-tune's: the
    # source and the alias's holder, scored on the fine-tune's validation rows)
    bar: float | None = None

    @property
    def folder_name(self) -> str:
        """The study's folder under mlruns/ (checkpoints, reports)."""
        return path_part(self.name)
