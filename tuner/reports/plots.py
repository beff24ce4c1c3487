"""`tuner report`: the study's plots (Optuna's matplotlib visualisations) and a top-trials
table, as PNGs and one self-contained HTML page, also logged on the study's parent run."""

from __future__ import annotations

import base64
import html
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import optuna.visualization.matplotlib as ovm  # noqa: E402
from optuna.importance import PedAnovaImportanceEvaluator  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from tuner.config import keys
from tuner.reports.ranking import best_trial, trials_table, value_of  # noqa: E402
from tuner.tracking import TrackingStore  # noqa: E402

PLOTS: dict[str, tuple[str, Callable[..., Any]]] = {
    "history": (
        "Optimisation history: value per trial, best so far",
        ovm.plot_optimization_history,
    ),
    # PED-ANOVA needs no scikit-learn, unlike Optuna's default fANOVA
    "importances": (
        "Hyperparameter importances (PED-ANOVA)",
        lambda s, **target: ovm.plot_param_importances(
            s, evaluator=PedAnovaImportanceEvaluator(), **target
        ),
    ),
    "parallel": ("Parallel coordinates: params against the metric", ovm.plot_parallel_coordinate),
}


def _study_plots(study: optuna.Study) -> dict[str, tuple[str, Callable[[], Any]]]:
    """The plots of `study`: of a multi-objective one, the Pareto front, and the others
    over its first objective (Optuna's plots need one target there)."""
    if len(study.directions) == 1:
        return {name: (title, partial(plot, study)) for name, (title, plot) in PLOTS.items()}
    names = [o["metric"] for o in keys.study_attr(study, keys.SPACE).get("objectives", [])]
    target = {"target": lambda t: t.values[0], "target_name": names[0] if names else "value"}
    plots = {
        name: (f"{title} ({target['target_name']})", partial(plot, study, **target))
        for name, (title, plot) in PLOTS.items()
    }
    front = partial(ovm.plot_pareto_front, study, target_names=names or None)
    return {"pareto": ("Pareto front: every complete trial, the front marked", front), **plots}


def write_report(study: optuna.Study, out: Path, tracking_uri: str, top: int = 10) -> Path:
    """PNGs + report.html in `out`; returns the HTML path."""
    out.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, Path]] = []
    for name, (title, plot) in _study_plots(study).items():
        path = _save(plot, out / f"{name}.png")
        if path:
            figures.append((title, path))
    epochs = _save(lambda: plot_epoch_curves(tracking_uri, study), out / "intermediate.png")
    if epochs:
        figures.append(("Metric per epoch of every trial (where pruning cut)", epochs))
    best = best_trial(study)
    if best and best.user_attrs.get(keys.RUN_ID):
        curves = _save(
            lambda: plot_learning_curves(tracking_uri, best), out / "learning_curves.png"
        )
        if curves:
            figures.append((f"Learning curves of the best trial ({best.number})", curves))
    table = trials_table(study)
    if "value" in table:
        ascending = study.directions[0] == optuna.study.StudyDirection.MINIMIZE
        table = table.sort_values("value", ascending=ascending, na_position="last").head(top)
    page = out / "report.html"
    try:
        page.write_text(_html(study, figures, table), encoding="utf-8")
    except OSError:
        page.unlink(missing_ok=True)
        raise
    return page


def _save(draw: Callable[[], Any], path: Path) -> Path | None:
    """Draw one figure to PNG; a plot that does not apply (no params, one trial) is skipped."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            draw()
        except (ValueError, RuntimeError, ZeroDivisionError):
            plt.close("all")
            return None
    figure = plt.gcf()
    figure.set_size_inches(9, 5)
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=90)
    except OSError:  # a full disk: no empty or half-written PNG stays behind
        path.unlink(missing_ok=True)
        raise
    finally:
        plt.close("all")
    return path


def plot_learning_curves(tracking_uri: str, trial: optuna.trial.FrozenTrial) -> None:
    store = TrackingStore(tracking_uri)
    run_id = trial.user_attrs[keys.RUN_ID]
    _, axis = plt.subplots()
    for key in ("train_loss", "val_loss"):
        history = store.metric_history(run_id, key)
        axis.plot([step for step, _ in history], [v for _, v in history], marker=".", label=key)
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss")
    axis.legend()
    axis.set_title(f"trial {trial.number}: train vs validation loss")


def plot_epoch_curves(tracking_uri: str, study: optuna.Study) -> None:
    """Every finished trial's metric per epoch, read from MLflow (Optuna holds only the
    steps its pruner decides at); pruned trials dashed."""
    store, metric = TrackingStore(tracking_uri), keys.study_attr(study, keys.METRIC)
    states = (TrialState.COMPLETE, TrialState.PRUNED)
    trials = [t for t in study.get_trials(deepcopy=False, states=states)
              if t.user_attrs.get(keys.RUN_ID)]  # fmt: skip
    if not trials:
        raise ValueError("no finished trial has an MLflow run")
    _, axis = plt.subplots()
    for trial in trials:
        history = store.metric_history(trial.user_attrs[keys.RUN_ID], metric)
        style = "--" if trial.state == TrialState.PRUNED else "-"
        axis.plot([step for step, _ in history], [v for _, v in history], style, linewidth=1)
    axis.set_xlabel("step (fold x max_epochs + epoch)")
    axis.set_ylabel(metric)
    axis.set_title(f"{metric} per epoch, {len(trials)} trials (dashed: pruned)")


def _html(study: optuna.Study, figures: list[tuple[str, Path]], table: Any) -> str:
    images = "\n".join(
        f"<h2>{html.escape(title)}</h2>\n<img alt='{html.escape(title)}' "
        f"src='data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}'>"
        for title, path in figures
    )
    best, metric = best_trial(study), keys.study_attr(study, keys.METRIC)
    headline = (
        f"best {metric} = {value_of(best):.4g} (trial {best.number})"
        if best
        else "no complete trial yet"
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Study {html.escape(study.study_name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1000px}}img{{max-width:100%}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px}}
</style></head><body>
<h1>Study {html.escape(study.study_name)}</h1>
<p>Task {html.escape(keys.study_attr(study, keys.TASK) or "?")}, {len(study.trials)} trials;
{html.escape(headline)}.</p>
<h2>Top trials</h2>
{table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")}
{images}
</body></html>
"""
