"""`tuner report`: the study's plots as PNGs and one self-contained HTML page
(tuner.reports.page), also logged on the study's parent run. The plots are Optuna's
matplotlib visualisations and our curves: matplotlib is installed already, and inlined PNGs
keep the page one small file that opens anywhere (plotly's interactive plots would add
several MB of script to each page, or a CDN the page must reach)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import optuna.visualization.matplotlib as ovm  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from optuna.importance import PedAnovaImportanceEvaluator  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from tuner.config import keys, trial_attrs
from tuner.reports import page  # noqa: E402
from tuner.reports.ranking import (  # noqa: E402
    FINISHED,
    best_trial,
    ranked_trials,
    trials_table,
    value_of,
)
from tuner.tracking import TrackingStore  # noqa: E402
from tuner.training.folds import fold_count  # noqa: E402

PLOTS: dict[str, tuple[str, Callable[..., Any]]] = {
    "history": (
        "Optimisation history: value per trial, best so far",
        lambda s, **target: _whole_trials(ovm.plot_optimization_history(s, **target)),
    ),
    # PED-ANOVA needs no scikit-learn, unlike Optuna's default fANOVA
    "importances": (
        "Hyperparameter importances (PED-ANOVA)",
        lambda s, **target: ovm.plot_param_importances(
            s, evaluator=PedAnovaImportanceEvaluator(), **target
        ),
    ),
    "parallel": (
        "Parallel coordinates: params against the metric",
        lambda s, **target: _no_white_lines(ovm.plot_parallel_coordinate(s, **target)),
    ),
}


def _no_white_lines(axis: Any) -> Any:
    """Optuna colours the lines on Blues, whose worst end is near white on a white page: the
    same scale from its light blue on, so every trial's line shows."""
    for lines in axis.collections:
        blues = plt.get_cmap(lines.get_cmap().name)
        light, dark = (0.0, 0.55) if blues.name.endswith("_r") else (0.45, 1.0)
        shades = blues(np.linspace(light, dark, 256))
        lines.set_cmap(ListedColormap(shades, name="blues-visible"))
    return axis


def _whole_trials(axis: Any) -> Any:
    """Trial numbers on the x axis as whole numbers (matplotlib would tick 0.25, 0.5...)."""
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    return axis


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


def write_report(
    study: optuna.Study,
    out: Path,
    tracking_uri: str,
    top: int = 10,
    views: tuple[list[tuple[str, Any]], str] = ([], ""),
) -> Path:
    """PNGs + report.html in `out`; returns the HTML path. `views`: the task's figures of
    the best model on the test part (tuner.models.showcase), or none and why."""
    out.mkdir(parents=True, exist_ok=True)
    sections = [page.baselines_section(study), *_views(views, out)]
    for name, (title, plot) in _study_plots(study).items():
        path = _save(plot, out / f"{name}.png")
        caveat = page.few_trials_caveat(study) if name in ("importances", "parallel") else ""
        if path:
            sections.append(page.Section(name, title, page.figure(path, title, caveat)))
    sections += _curves(study, out, tracking_uri)
    sections += page.trials_sections(study, trials_table(study), top)
    report = out / "report.html"
    try:
        report.write_text(page.render(study, sections), encoding="utf-8")
    except OSError:
        report.unlink(missing_ok=True)
        raise
    return report


def _views(views: tuple[list[tuple[str, Any]], str], out: Path) -> list[page.Section]:
    """The task's views: figures drawn to PNG, HTML fragments as the task wrote them."""
    drawn, why = views
    found = []
    for k, (title, view) in enumerate(drawn):
        if isinstance(view, str):
            found.append(page.Section(f"view{k}", title, view))
            continue
        path = _save(view, out / f"view{k}.png")
        if path:
            found.append(page.Section(f"view{k}", title, page.figure(path, title)))
    if why:
        found.append(page.Section("views", "The best model on the test part", f"<p>{why}</p>"))
    return found


def _curves(study: optuna.Study, out: Path, tracking_uri: str) -> list[page.Section]:
    """Every finished trial's metric per epoch, fold by fold; the best's train and
    validation loss."""
    found = []
    title = "Metric per epoch of every trial, fold by fold (best trials named, pruned dashed)"
    epochs = _save(lambda: plot_epoch_curves(tracking_uri, study), out / "intermediate.png")
    if epochs:
        found.append(page.Section("curves", title, page.figure(epochs, title)))
    best = best_trial(study)
    if best and trial_attrs.of(best).get(keys.RUN_ID):
        path = out / "learning_curves.png"
        curves = _save(lambda: plot_learning_curves(tracking_uri, best), path)
        if curves:
            title = f"Learning curves of the best trial ({best.number})"
            found.append(page.Section("learning", title, page.figure(curves, title)))
    return found


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
    """The trial's training and validation loss per epoch, one panel per fold."""
    store = TrackingStore(tracking_uri)
    run_id, epochs = trial_attrs.of(trial)[keys.RUN_ID], _max_epochs(trial)
    axes = _fold_panels(_fold_count(trial))
    for key in ("train_loss", "val_loss"):
        for fold, points in _by_fold(store.metric_history(run_id, key), epochs).items():
            axes[fold].plot(*zip(*points, strict=True), marker=".", label=key)
    axes[0].set_ylabel("loss")
    _legend(axes)
    plt.suptitle(f"trial {trial.number}: train vs validation loss")


def _fold_panels(folds: int) -> list[Any]:
    """One axis per fold, sharing the metric's scale, each with its own epoch axis."""
    _, axes = plt.subplots(1, folds, sharey=True, squeeze=False)
    for fold, axis in enumerate(axes[0]):
        axis.set_xlabel("epoch" + (f" (fold {fold})" if folds > 1 else ""))
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    return list(axes[0])


def _legend(axes: list[Any]) -> None:
    """One legend right of the last panel, for the lines of every panel."""
    handles: dict[str, Any] = {}
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    axes[-1].legend(handles.values(), handles.keys(), loc="upper left",
                    bbox_to_anchor=(1.02, 1), fontsize=8)  # fmt: skip


def _by_fold(history: list[tuple[int, float]], epochs: int) -> dict[int, list]:
    """A curve recorded across folds (step = fold x max_epochs + epoch) as each fold's own."""
    folds: dict[int, list] = {}
    for step, value in history:
        folds.setdefault(step // epochs, []).append((step % epochs, value))
    return folds


def _max_epochs(trial: optuna.trial.FrozenTrial) -> int:
    return max(1, int((trial_attrs.of(trial).get(keys.SETTINGS) or {}).get("max_epochs") or 1))


def plot_epoch_curves(tracking_uri: str, study: optuna.Study, named: int = 5) -> None:
    """Every finished trial's metric per epoch, read from MLflow (Optuna holds only the
    steps its pruner decides at), one panel per fold (a trial's folds run in a row: step
    = fold x max_epochs + epoch); the best `named` trials in colour with a legend, the best
    thickest, the others grey; pruned trials dashed."""
    store, metric = TrackingStore(tracking_uri), keys.study_attr(study, keys.METRIC)
    trials = [t for t in study.get_trials(deepcopy=False, states=FINISHED)
              if trial_attrs.of(t).get(keys.RUN_ID)]  # fmt: skip
    if not trials:
        raise ValueError("no finished trial has an MLflow run")
    best = [t.number for t in ranked_trials(study)][:named]
    axes = _fold_panels(max(_fold_count(t) for t in trials))
    for trial in sorted(trials, key=lambda t: t.number in best):  # the named ones on top
        history = store.metric_history(trial_attrs.of(trial)[keys.RUN_ID], metric)
        style = _curve_style(trial, best)
        for fold, points in _by_fold(history, _max_epochs(trial)).items():
            if fold < len(axes):
                axes[fold].plot(*zip(*points, strict=True), **style)
                style = {**style, "label": None}  # one legend entry per trial
    axes[0].set_ylabel(metric)
    _legend(axes)
    plt.suptitle(f"{metric} per epoch, {len(trials)} trials")


def _fold_count(trial: optuna.trial.FrozenTrial) -> int:
    return fold_count(trial_attrs.of(trial).get(keys.SETTINGS) or {})


def _curve_style(trial: optuna.trial.FrozenTrial, best: list[int]) -> dict[str, Any]:
    dashed = "--" if trial.state == TrialState.PRUNED else "-"
    if trial.number not in best:
        return {"linestyle": dashed, "color": "0.75", "linewidth": 0.8, "label": None}
    first = best.index(trial.number) == 0
    label = f"trial {trial.number} ({value_of(trial):.4g})" + (", best" if first else "")
    return {"linestyle": dashed, "linewidth": 2.5 if first else 1.4, "zorder": 3, "label": label}
