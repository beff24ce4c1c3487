"""Python API for notebooks and scripts; the CLI calls these same functions."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from tuner import stores
from tuner import study as studies
from tuner.errors import UsageError
from tuner.finetuning import FinetuneConfig, FinetuneResult
from tuner.finetuning import finetune as run_finetune
from tuner.prediction import predict as run_predict
from tuner.prediction import write_csv_atomically
from tuner.provenance import Hop
from tuner.provenance import lineage as follow_lineage
from tuner.report import compare_studies, trials_table
from tuner.space import parse_overrides
from tuner.study import SearchConfig, SearchResult


def search(task: str, trials: int = 20, **options: Any) -> SearchResult:
    """Run or resume a study until it holds `trials` finished trials.

    Options are the fields of `tuner.study.SearchConfig` (data, space, study, storage,
    tracking_uri, sampler, pruner, seed, overrides, timeout, devices, quiet); `pruner` may
    also be an Optuna pruner object.
    """
    return studies.run_search(SearchConfig(task=task, trials=trials, **options))


def best(study: str, storage: str | None = None) -> SearchResult:
    """The best trial of a study: value, params, MLflow run, checkpoint URI."""
    loaded = stores.load_study(study, storage)
    return studies.summarize(
        loaded, stores.resolve_tracking(None)[0], stores.resolve_storage(storage)
    )


def trials(study: str, storage: str | None = None) -> pd.DataFrame:
    """Every trial of a study as a table."""
    return trials_table(stores.load_study(study, storage))


def finetune(source: str, **options: Any) -> FinetuneResult:
    """Fine-tune SRC (path, runs:/, models:/, study:); options: fields of FinetuneConfig."""
    return run_finetune(FinetuneConfig(source=source, **options))


def predict(
    source: str,
    data: dict[str, Any] | None = None,
    out: str | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    task: str | None = None,
    options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Predictions of SRC on `data` (default: its training data) as a table. `options` are
    the task's predict options (proba for classification; prompt, length, temperature,
    seed for charlm)."""
    return run_predict(source, data, out, storage, tracking_uri, task, options)


def lineage(ref: str, tracking_uri: str | None = None) -> list[Hop]:
    """The chain of runs from a model back to the study that first trained it."""
    return follow_lineage(ref, stores.resolve_tracking(tracking_uri)[0])


def data_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """--data and --data-arg KEY=VALUE -> the task's data options."""
    data: dict[str, Any] = {"data": args.data}
    for pair in args.data_arg:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--data-arg {pair!r}: expected KEY=VALUE, e.g. target=sales")
        data[key.strip().replace("-", "_")] = value
    return data


def finetune_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return dict(
        source=args.source,
        task=args.task,
        data=data_kwargs(args),
        lr=args.lr,
        max_epochs=args.max_epochs,
        freeze_layers=args.freeze_layers,
        patience=args.patience,
        trials=args.trials,
        space=args.space,
        study=args.study,
        model_name=args.model_name,
        seed=args.seed,
        storage=args.storage,
        tracking_uri=args.tracking_uri,
        quiet=args.quiet,
    )


def print_finetune(result: FinetuneResult) -> None:
    print_result(result.search)
    after = "n/a" if result.after is None else f"{result.after:.4f}"
    print(f"{result.metric} before -> after fine-tuning: {result.before:.4f} -> {after}")


def search_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """`tuner search` flags -> keyword arguments of `search`."""
    from tasks import get_task

    settings = get_task(args.task).defaults
    overrides = parse_overrides(args.set, settings)
    if args.max_epochs is not None:
        overrides["max_epochs"] = args.max_epochs
    data = {key: getattr(args, key) for key in getattr(args, "data_keys", [])}
    return dict(
        task=args.task,
        trials=args.trials,
        data=data,
        space=args.space,
        timeout=args.timeout,
        study=args.study,
        storage=args.storage,
        tracking_uri=args.tracking_uri,
        sampler=args.sampler,
        pruner=args.pruner,
        seed=args.seed,
        overrides=overrides,
        devices=args.devices,
        precision=args.precision,
        workers=args.workers,
        trials_per_device=args.trials_per_device,
        heartbeat=args.heartbeat,
        quiet=args.quiet,
        verbose=args.verbose,
    )


def print_result(result: SearchResult) -> None:
    counts = ", ".join(f"{n} {state}" for state, n in result.counts.items())
    print(f"\nstudy {result.study}: {counts}")
    if result.best_trial is None:
        print("no trial has completed yet")
        return
    print(f"best trial {result.best_trial}: {result.metric} = {result.best_value:.4f}")
    for name, value in result.best_params.items():
        print(f"  {name} = {value}")
    _print_test_metrics(result)
    print(f"MLflow run     {result.best_run_id}  ({result.tracking_uri})")
    print(f"checkpoint     {result.checkpoint_uri}")
    if result.model_version:
        print(
            f"model          models:/{result.model_name}/{result.model_version} "
            f"(alias models:/{result.model_name}@best)"
        )


def _print_test_metrics(result: SearchResult) -> None:
    # test_loss is in the model's training units: only metrics a person can read are printed
    baselines = set(result.baseline_keys)
    for label, is_baseline in (("test (held out)", False), ("baseline (same)", True)):
        shown = {
            k: v
            for k, v in result.test_metrics.items()
            if (k in baselines) == is_baseline and k != "test_loss"
        }
        if shown:
            print(f"{label}: " + ", ".join(f"{k} = {v:.3f}" for k, v in shown.items()))


def report(
    study: str, out: str | None = None, storage: str | None = None, tracking_uri: str | None = None
) -> Path:
    """Write the study's report (PNGs + report.html) and log it on the study's parent run."""
    from mlflow import MlflowClient

    from tuner.plots import write_report

    loaded = stores.load_study(study, storage)
    uri = stores.resolve_tracking(tracking_uri)[0]
    folder = Path(out) if out else stores.HOME / "reports" / study
    page = write_report(loaded, folder, uri)
    parent = loaded.user_attrs.get("mlflow_parent_run_id")
    if parent:
        MlflowClient(uri).log_artifacts(parent, str(folder), "report")
    return page


def compare(names: list[str], out: str | None = None, storage: str | None = None) -> pd.DataFrame:
    """Side-by-side table of studies (also written as CSV to `out`)."""
    table = compare_studies([stores.load_study(name, storage) for name in names])
    if out:
        write_csv_atomically(table, Path(out))
    return table
