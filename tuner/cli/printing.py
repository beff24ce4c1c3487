"""What the CLI prints of a study: counts, best trial, test metrics, where the records are
(a password in a store URL shown as ***)."""

from __future__ import annotations

from typing import Any

from tuner.errors import mask_secrets


def print_result(result: Any, after_trials: bool = True) -> None:
    """A study's counts, best trial, its test metrics and where its records are (a blank
    line first, `after_trials`: it follows a sweep's trial lines)."""
    counts = ", ".join(f"{n} {state}" for state, n in result.counts.items()
                       if n or state != "interrupted")  # fmt: skip
    if after_trials:
        print()
    print(f"study {result.study}: {counts}")
    within = f" meeting {', '.join(result.constraints)}" if result.constraints else ""
    if result.best_trial is None:
        _print_no_best(result, within)
        return
    if result.front:
        _print_front(result, within)
    folds = ", ".join(f"{value:.4g}" for value in result.fold_values)
    over = f" (mean of {len(result.fold_values)} folds: {folds})" if folds else ""
    print(
        f"best trial {result.best_trial}{within}: {result.metric} = {result.best_value:.4f}{over}"
    )
    for name, value in result.best_params.items():
        print(f"  {name} = {value:.4g}" if isinstance(value, float) else f"  {name} = {value}")
    _print_baseline_warning(result)
    _print_test_metrics(result)
    print(mask_secrets(f"MLflow run     {result.best_run_id}  ({result.tracking_uri})"))
    if result.checkpoint_uri is None:
        print(
            "logged model   none: only a trial that was the study's best when it ended keeps one"
        )
        return
    print(f"logged model   {result.checkpoint_uri}")
    _print_model(result)
    for uri, value in result.ensembles:
        print(f"ensemble       {uri}: {result.metric} {value:.4f}, better than the study's "
              f"@best on the same validation rows: the one to deploy")  # fmt: skip
    if result.fold_values and not result.front:  # chosen on folds: the data are small
        print(
            f"next           tuner ensemble --study {result.study} --top 5 --seeds 3  (the "
            f"best 5 configurations, 3 fresh fits each, averaged: on small data often better "
            f"than one; it takes @best only if it beats trial {result.best_trial} on validation)"
        )


def _print_no_best(result: Any, within: str) -> None:
    """No best trial, and why where the search's constraints refused its models."""
    if within or not result.infeasible:
        print(f"no complete trial{within}" if within else "no trial has completed yet")
        return
    number, reason = result.infeasible[0]
    print(f"no trial met the search's constraints: {len(result.infeasible)} trial(s) built a "
          f"model that broke them (trial {number} {reason}); loosen --constraint or narrow "
          f"the space to smaller models")  # fmt: skip


def _print_model(result: Any) -> None:
    if not result.model_version:  # logged, its registration not yet written
        print("model          not registered yet: its records are queued (mlruns/journal/) "
              "by a sweep still running or one that stopped; a rerun of the sweep's command "
              "writes them")  # fmt: skip
        return
    version = f"models:/{result.model_name}/{result.model_version}"
    if result.not_promoted is None:
        print(f"model          {version} (alias models:/{result.model_name}@best)")
        return
    print(
        f"model          {version}, not aliased @best: {result.metric} "
        f"{result.best_value:.4f} does not beat {result.not_promoted:.4f}, the model it had to "
        f"beat on the same validation rows"
    )


def _print_baseline_warning(result: Any) -> None:
    """One line when the best model does not beat a simple baseline on its own rows."""
    if result.front:
        return
    from tuner.reports.ranking import stronger_baseline  # loaded by then: no pandas at start

    found = stronger_baseline(
        result.metric, result.best_value, result.direction, result.val_baselines
    )
    if found:
        print(
            f"warning        {result.metric} {result.best_value:.4f} does not beat a simple "
            f"baseline on the same validation rows: {found[0]} = {found[1]:.4f}"
        )


def _print_front(result: Any, within: str) -> None:
    """A multi-objective study's non-dominated trials, one line each."""
    members = f"{len(result.front)} trial{'s' if len(result.front) > 1 else ''}"
    print(f"Pareto front{within} ({members}; best = the first objective's):")
    for row in result.front:
        values = "  ".join(
            f"{k} = {v:.0f}" if float(v).is_integer() else f"{k} = {v:.4g}"
            for k, v in row.items()
            if k not in ("trial", "model_version")
        )
        version = (
            f"  models:/{result.model_name}/{row['model_version']}" if row["model_version"] else ""
        )
        print(f"  trial {row['trial']:<4d} {values}{version}")


def _print_test_metrics(result: Any) -> None:
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
    if not baselines:
        print("baseline (same): none declared by the task (docs/custom.md)")
