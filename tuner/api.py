"""Python API for notebooks and scripts; the CLI calls these same functions."""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from tuner import study as studies
from tuner.report import trials_table
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
    loaded = studies.load_study(study, storage)
    return studies.summarize(loaded, studies.resolve_tracking(None)[0],
                             studies.resolve_storage(storage))


def trials(study: str, storage: str | None = None) -> pd.DataFrame:
    """Every trial of a study as a table."""
    return trials_table(studies.load_study(study, storage))


def search_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """`tuner search` flags -> keyword arguments of `search`."""
    from tasks import get_task

    settings = get_task(args.task).defaults
    overrides = parse_overrides(args.set, settings)
    if args.max_epochs is not None:
        overrides["max_epochs"] = args.max_epochs
    data = {key: getattr(args, key) for key in getattr(args, "data_keys", [])}
    return dict(task=args.task, trials=args.trials, data=data, space=args.space,
                timeout=args.timeout, study=args.study, storage=args.storage,
                tracking_uri=args.tracking_uri, sampler=args.sampler, pruner=args.pruner,
                seed=args.seed, overrides=overrides, devices=args.devices, quiet=args.quiet)


def print_result(result: SearchResult) -> None:
    counts = ", ".join(f"{n} {state}" for state, n in result.counts.items())
    print(f"\nstudy {result.study}: {counts}")
    if result.best_trial is None:
        print("no trial has completed yet")
        return
    print(f"best trial {result.best_trial}: {result.metric} = {result.best_value:.4f}")
    for name, value in result.best_params.items():
        print(f"  {name} = {value}")
    _print_test_metrics(result.test_metrics)
    print(f"MLflow run     {result.best_run_id}  ({result.tracking_uri})")
    print(f"checkpoint     {result.checkpoint_uri}")
    if result.model_version:
        print(f"model          models:/{result.study}/{result.model_version} "
              f"(alias models:/{result.study}@best)")


def _print_test_metrics(metrics: dict[str, float]) -> None:
    # test_loss is in normalised units: only the metrics a person can read are printed
    model = {k: v for k, v in metrics.items() if "snaive" not in k and k != "test_loss"}
    if not model:
        return
    print("test (held out): " + ", ".join(f"{k} = {v:.3f}" for k, v in model.items()))
    baseline = {k: v for k, v in metrics.items() if "snaive" in k}
    if baseline:
        print("seasonal naive:  " + ", ".join(f"{k.replace('_snaive', '')} = {v:.3f}"
                                              for k, v in baseline.items()))
