"""Model selection on small data (the selection sections of RESULTS.md):

- threshold: why a hold-out under 200 items gets folds (how much a choice on n validation
  items loses against the true best);
- pruning: which pruning of a K-fold trial saves most epochs without losing the best trial;
- airline: 10-trial sweeps, seeds 0-5, chosen by one hold-out window (`--set folds=1`) vs by
  4 backtests (the default): test MAE, epochs trained, epochs pruning saved, wall;
- classification: the default space on JapaneseVowels (10 minutes) and on UCR / UEA sets it
  was not tuned on (5 minutes each), test accuracy beside 1-nearest-neighbour (Euclidean);
- series: the default space on two univariate series it was not tuned on, test MAE beside
  seasonal naive and naive.

With the airline and the classification sets it also measures which model a K-fold trial
should keep, on each sweep's chosen trial: its fold models averaged (what the sweep kept and
recorded), fold 0's model alone, or a refit on all non-test data for the folds' median best
epoch count (both reproduced here with the trial's params and seeds).

Run: python -m benchmarks.selection [threshold|pruning|airline|classification|series]
(each updates its own section of RESULTS.md). Not part of `make bench`: about 90 minutes on
2 cores. The data sets come from benchmarks/data/make_sets.py.
"""

from __future__ import annotations

import copy
import math
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import optuna

from benchmarks.common import (
    REPO,
    epoch_budget,
    epochs_of,
    load,
    machine,
    run_cli,
    scratch,
    write_section,
)
from tuner.config import keys
from tuner.config.trial_attrs import of as attrs_of
from tuner.runtime.logs import quiet_libraries
from tuner.study.samplers import decides_at, make_pruner

DATA = Path(__file__).parent / "data"
SEEDS = (0, 1, 2, 3, 4, 5)
UCR = {  # file -> minutes of sweep
    REPO / "tasks" / "data" / "japanese_vowels.npz": 10,
    DATA / "arrowhead.npz": 5,
    DATA / "basicmotions.npz": 5,
    DATA / "gunpoint.npz": 5,
    DATA / "osuleaf.npz": 5,
}
SERIES = (DATA / "co2.csv", DATA / "elnino.csv")


# ---------------------------------------------------------------- sweeps


class Swept(NamedTuple):
    study: optuna.Study
    wall: float
    output: str
    folder: Path  # its scratch project (mlruns/ inside)


def sweep(task: str, data: Path, *args: str) -> Swept:
    """A real `tuner search` in a scratch project: the study, its wall and its output."""
    folder = scratch()
    study = f"{task}-{data.stem}"
    wall, output = run_cli(
        folder, "search", "--task", task, "--data", str(data), "--study", study, *args,
        "--quiet", timeout=7200,
    )  # fmt: skip
    return Swept(load(folder, study), wall, output, folder)


def best(study: optuna.Study) -> optuna.trial.FrozenTrial:
    from tuner.reports.ranking import best_trial

    chosen = best_trial(study)
    if chosen is None:
        raise RuntimeError(f"study {study.study_name} has no complete trial")
    return chosen


def epochs(study: optuna.Study) -> dict[str, int]:
    """Epochs trained (validated epochs of every trial) and epochs pruning saved (what
    pruned trials would have trained to the end of their folds)."""
    trained = sum(epochs_of(t) for t in study.trials)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    saved = sum(epoch_budget(t) - epochs_of(t) for t in pruned)
    return {"trained": trained, "saved": saved}


# ---------------------------------------------------------------- kept model


def fold_outputs(task_name: str, data_path: Path, trial: optuna.trial.FrozenTrial, seed: int):
    """Each fold model's test outputs (original units, or class probabilities), the test
    targets and each fold's best epoch, trained as the sweep trained them (seed + fold,
    the best epoch's weights kept)."""
    import lightning.pytorch as pl

    from tuner.contract.registry import get_task
    from tuner.training.folds import fold_count
    from tuner.training.loop import FitLoop

    task = get_task(task_name)
    data = task.load_data({"data": str(data_path)})
    settings = attrs_of(trial)["settings"]
    metric = study_metric(task_name)
    outputs, best_epochs = [], []
    for fold in range(fold_count(settings)):
        pl.seed_everything(seed + fold, verbose=False)
        datamodule = task.build_datamodule(data, {**settings, "seed": seed, "fold": fold})
        model = task.build_model(settings, datamodule)
        keep = BestEpoch(metric, task.spec.direction_of(metric))
        FitLoop(max_epochs=int(settings["max_epochs"]), grad_clip=settings.get("grad_clip"),
                callbacks=[keep]).fit(model, datamodule)  # fmt: skip
        model.load_state_dict(keep.state)
        predicted, target = TEST_OUTPUTS[task_name](model, datamodule)
        outputs.append(predicted)
        best_epochs.append(keep.epoch)
    return outputs, target, best_epochs


def refit_output(task_name: str, data_path: Path, trial: optuna.trial.FrozenTrial,
                 seed: int, epochs: int):  # fmt: skip
    """The trial's params trained on every non-test item (fold None) for `epochs`, with no
    validation to choose an epoch on: the test outputs of the refit."""
    import lightning.pytorch as pl

    from tuner.contract.registry import get_task
    from tuner.training.loop import FitLoop

    task = get_task(task_name)
    data = task.load_data({"data": str(data_path)})
    settings = attrs_of(trial)["settings"]
    pl.seed_everything(seed, verbose=False)
    datamodule = task.build_datamodule(data, {**settings, "seed": seed, "fold": None})
    model = task.build_model(settings, datamodule)
    FitLoop(max_epochs=epochs, grad_clip=settings.get("grad_clip")).fit(model, datamodule)
    return TEST_OUTPUTS[task_name](model, datamodule)[0]


def study_metric(task_name: str) -> str:
    return {"forecasting": "val_mae", "classification": "val_acc"}[task_name]


class BestEpoch:
    """The best validation epoch's weights (the metric, then val_loss), as the recorder."""

    def __init__(self, metric: str, direction: str) -> None:
        self.metric, self.sign = metric, 1.0 if direction == "minimize" else -1.0
        self.rank, self.state, self.epoch = (math.inf, math.inf), None, -1

    def on_epoch_end(self, loop: Any, model: Any, metrics: dict[str, float]) -> None:
        rank = (self.sign * metrics[self.metric], metrics["val_loss"])
        if rank < self.rank:
            self.rank, self.state = rank, copy.deepcopy(model.state_dict())
            self.epoch = loop.epoch


def _forecast_outputs(model, datamodule):
    import torch

    from tuner.tasks.forecasting.task import to_original_units

    x, _, loc, scale, y_raw = datamodule.tensors["test"]
    model.eval()
    with torch.no_grad():
        return to_original_units(model(x), loc, scale, model.hparams.transform), y_raw


def _class_outputs(model, datamodule):
    import torch

    x, lengths, y = datamodule.tensors["test"]
    model.eval()
    with torch.no_grad():
        return torch.softmax(model(x, lengths), 1), y


TEST_OUTPUTS: dict[str, Callable] = {
    "forecasting": _forecast_outputs,
    "classification": _class_outputs,
}
SCORES: dict[str, Callable] = {
    "forecasting": lambda out, y: float((out - y).abs().mean()),
    "classification": lambda out, y: float((out.argmax(1) == y).float().mean()),
}


def kept_scores(task_name: str, data: Path, trial: optuna.trial.FrozenTrial, seed: int):
    """The test metric of the models a chosen K-fold trial could keep: what the sweep kept
    (recorded), and reproduced here: all its fold models averaged, the newest half of them
    (folds 0 to ceil(K / 2) - 1) averaged, fold 0's model alone, and a refit on all non-test
    data for the folds' median best epoch count."""
    import torch

    outputs, target, best_epochs = fold_outputs(task_name, data, trial, seed)
    epochs = int(statistics.median(e + 1 for e in best_epochs))
    refit = refit_output(task_name, data, trial, seed, epochs)
    score = SCORES[task_name]  # outputs are forecasts or probabilities: their mean
    metric = "test_mae" if task_name == "forecasting" else "test_acc"
    newest = outputs[: -(-len(outputs) // 2)]
    return {
        "kept (as the sweep recorded it)": float(attrs_of(trial)[metric]),
        "all folds averaged": score(torch.stack(outputs).mean(0), target),
        "newest half averaged": score(torch.stack(newest).mean(0), target),
        "fold 0 alone": score(outputs[0], target),
        "refit": score(refit, target),
    }


# ---------------------------------------------------------------- baselines


def nearest_neighbour(path: Path) -> float:
    """1-NN with Euclidean distance on the raw values, official train / test split."""
    arrays = np.load(path)
    X, y, split = arrays["X"], arrays["y"], arrays["split"]
    train, test = split == "train", split == "test"
    a, b = X[train].reshape(train.sum(), -1), X[test].reshape(test.sum(), -1)
    distances = (b**2).sum(1)[:, None] - 2 * b @ a.T + (a**2).sum(1)[None, :]
    return float((y[train][distances.argmin(1)] == y[test]).mean())


def naive_mae(path: Path, horizon: int = 12) -> float:
    """The last training value repeated over the test horizon."""
    values = np.loadtxt(path, delimiter=",", skiprows=1, usecols=1)
    return float(np.abs(values[-horizon:] - values[-horizon - 1]).mean())


# ---------------------------------------------------------------- sections


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def airline() -> str:
    air = REPO / "tasks" / "data" / "air_passengers.csv"
    rows, kept = [], []
    for label, extra in (("one hold-out window (`folds: 1`)", ["--set", "folds=1"]),
                         ("4 backtests (default)", [])):  # fmt: skip
        runs = []
        for seed in SEEDS:
            study, wall, *_ = sweep("forecasting", air, "--trials", "10", "--seed", str(seed),
                                   *extra)  # fmt: skip
            chosen = best(study)
            runs.append({"mae": attrs_of(chosen)["test_mae"], "wall": wall, **epochs(study)})
            if not extra:
                kept.append(kept_scores("forecasting", air, chosen, seed))
        per_seed = ", ".join(f"{r['mae']:.1f}" for r in runs)
        rows.append(
            f"| {label} | {per_seed} | "
            f"**{_median([r['mae'] for r in runs]):.1f}** | "
            f"{sum(r['trained'] for r in runs)} | {sum(r['saved'] for r in runs)} | "
            f"{_median([r['wall'] for r in runs]):.0f} |"
        )
    return "\n".join(
        [
            "## Selection on the airline: one hold-out window vs backtests",
            "",
            f"Machine: {machine()}. `tuner search --task forecasting --trials 10 --seed S`, "
            f"seeds {SEEDS[0]}-{SEEDS[-1]}, test = 1960.",
            "",
            "| chosen by | test MAE per seed | median | epochs trained (6 sweeps) | "
            "epochs pruning saved | median wall (s) |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            *_kept_table("forecasting, test MAE (lower is better)", kept),
        ]
    )


def classification() -> str:
    """The default space on each set for its minutes (no trial starts after them), seed 0."""
    rows, kept = [], []
    for path, minutes in UCR.items():
        study, wall, *_ = sweep("classification", path, "--trials", "500",
                               "--timeout", str(60 * minutes))  # fmt: skip
        chosen, counts = best(study), _counts(study)
        baseline = nearest_neighbour(path)
        accuracy = float(attrs_of(chosen)["test_acc"])
        folds = int(attrs_of(chosen)["settings"].get("folds") or 1)
        rows.append(
            f"| {path.stem} | {_shape(path)} | {folds} | **{accuracy:.3f}** | {baseline:.3f} | "
            f"{'above' if accuracy > baseline else 'equal' if accuracy == baseline else 'BELOW'}"
            f" | {counts} in {wall:.0f} s |"
        )
        if folds > 1:
            kept.append(kept_scores("classification", path, chosen, 0))
    lines = [
        "## Classification on sets the defaults were not tuned on (UCR / UEA)",
        "",
        f"Machine: {machine()}. `tuner search --task classification --data SET --trials 500 "
        f"--timeout T` with the default space, seed 0; official train / test splits; "
        f"1-NN: Euclidean distance on the raw values, same split.",
        "",
        "| set | sequences x steps x features (train / test) | folds | test acc | 1-NN "
        "Euclidean | | sweep |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    return "\n".join(
        lines + (_kept_table("test accuracy, higher is better", kept) if kept else [])
    )


def series() -> str:
    """The default space on each univariate series (last 12 months test), 5 minutes."""
    rows = []
    for path in SERIES:
        study, wall, *_ = sweep("forecasting", path, "--trials", "500", "--timeout", "300")
        chosen = best(study)
        attrs = attrs_of(chosen)
        rows.append(
            f"| {path.stem} | {len(np.loadtxt(path, delimiter=',', skiprows=1, usecols=1))} | "
            f"**{attrs['test_mae']:.3f}** | {attrs['test_snaive_mae']:.3f} | "
            f"{naive_mae(path):.3f} | {_counts(study)} in {wall:.0f} s |"
        )
    return "\n".join(
        [
            "## Forecasting on series the defaults were not tuned on",
            "",
            f"Machine: {machine()}. `tuner search --task forecasting --data SERIES --trials 500 "
            f"--timeout 300` with the default space (horizon 12, the last 12 months are the "
            f"test part), seed 0.",
            "",
            "| series | months | test MAE | seasonal naive | naive | sweep |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def threshold(configs: int = 8, repeats: int = 2000) -> str:
    """Why AUTO_BELOW is 200: train `configs` random configurations of the default space
    once each, score every one on every test sequence, then choose the best configuration
    on random validation sets of n of those sequences: how much test accuracy does a
    choice on n items lose against the true best (regret), and how often is it tied?"""
    from tuner.training.folds import AUTO_BELOW

    sets = (
        REPO / "tasks" / "data" / "japanese_vowels.npz",
        REPO / "tasks" / "data" / "digits.npz",
    )
    sizes, rows = (25, 50, 100, 200), []  # n = 400 would be the whole test part
    for path in sets:
        correct = _correct_per_sequence(path, configs)  # configs x test sequences
        truth = correct.mean(1)
        rng = np.random.default_rng(0)
        cells = []
        for n in sizes:
            n = min(n, correct.shape[1])
            regret, tied = [], 0
            for _ in range(repeats):
                chosen = rng.choice(correct.shape[1], n, replace=False)
                scores = correct[:, chosen].mean(1)
                tied += int((scores == scores.max()).sum() > 1)
                regret.append(truth.max() - truth[int(scores.argmax())])
            cells.append(f"{100 * np.mean(regret):.1f} ({tied / repeats:.0%})")
        spread = f"{truth.min():.3f}-{truth.max():.3f}"
        rows.append(f"| {path.stem} ({correct.shape[1]} test sequences) | {spread} | "
                    + " | ".join(cells) + " |")  # fmt: skip
    return "\n".join(
        [
            "## Why a validation part under 200 sequences gets folds",
            "",
            f"Machine: {machine()}. {configs} random configurations of the default "
            f"classification space, 20 epochs each, scored on every test sequence; the best "
            f"configuration is then chosen on {repeats} random validation sets of n of those "
            f"sequences. Cells: mean test-accuracy points lost against the true best "
            f"(regret), and how often two or more configurations tied at the top.",
            "",
            "| set | true accuracies | " + " | ".join(f"n = {n}" for n in sizes) + " |",
            "|---|---|" + "---|" * len(sizes),
            *rows,
            "",
            f"`folds: 0` (the default) uses K folds below AUTO_BELOW = {AUTO_BELOW} "
            f"validation items.",
            "",
        ]
    )


def _correct_per_sequence(path: Path, configs: int) -> np.ndarray:
    """configs x test sequences: 1 where a configuration classifies the sequence right."""
    import lightning.pytorch as pl
    import torch

    from tuner.config.space_file import load_space
    from tuner.contract.registry import get_task
    from tuner.training.loop import FitLoop

    task = get_task("classification")
    data = task.load_data({"data": str(path)})
    space = load_space(REPO / "search_spaces" / "classification.yaml", task.spec)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    rows = []
    for _ in range(configs):
        params = space.suggest(study.ask())
        settings = {**task.defaults, **space.fixed, **params, "folds": 1, "max_epochs": 20}
        pl.seed_everything(0, verbose=False)
        datamodule = task.build_datamodule(data, settings)
        model = task.build_model(settings, datamodule)
        FitLoop(max_epochs=20, grad_clip=settings.get("grad_clip")).fit(model, datamodule)
        x, lengths, y = datamodule.tensors["test"]
        model.eval()
        with torch.no_grad():
            rows.append((model(x, lengths).argmax(1) == y).numpy().astype(float))
    return np.stack(rows)


def pruning(seeds: Sequence[int] = SEEDS, trials: int = 20) -> str:
    """Which pruning saves most epochs without losing the best trial: airline sweeps with
    no pruning (random sampler, so pruning cannot change what is sampled) record every
    trial's whole curve, with 4 backtests and with one hold-out; each pruner is then
    replayed on those curves in trial order, as it would have acted, and the sweep keeps
    the best survivor."""
    air = REPO / "tasks" / "data" / "air_passengers.csv"
    lines = [
        "## Pruning: which way saves most without losing the best trial",
        "",
        f"Machine: {machine()}. Airline, {trials} trials per seed (seeds {seeds[0]}-"
        f"{seeds[-1]}), random sampler, no pruning; each pruner replayed on the recorded "
        f"curves: every epoch (step k x max_epochs + epoch for backtest k), or once per fold "
        f"(step k, the mean of the folds so far).",
        "",
        "| validation | pruner | epochs trained | best trial kept | median test MAE of the "
        "chosen |",
        "|---|---|---|---|---|",
    ]
    for label, extra in (("4 backtests", ()), ("one hold-out", ("--set", "folds=1"))):
        recorded = []
        for seed in seeds:
            swept = sweep("forecasting", air, "--trials", str(trials), "--seed", str(seed),
                          "--pruner", "none", "--sampler", "random", *extra)  # fmt: skip
            recorded.append(_curves(swept))
        lines += [f"| {label} | {row}" for row in _replay_rows(recorded, len(seeds))]
    return "\n".join(lines + [""])


class Recorded(NamedTuple):
    trial: optuna.trial.FrozenTrial
    curve: list[tuple[int, float]]  # (step, metric) at every epoch of every fold, from MLflow


def _curves(swept: Swept) -> list[Recorded]:
    """The complete trials with their whole curves: Optuna holds only the steps a pruner
    decides at (none here), MLflow every epoch."""
    from tuner.tracking import TrackingStore

    store = TrackingStore(f"sqlite:///{swept.folder}/mlruns/mlflow.db")
    metric = swept.study.user_attrs["metric"]
    return [Recorded(t, store.metric_history(attrs_of(t)[keys.RUN_ID], metric))
            for t in swept.study.trials if t.state.name == "COMPLETE"]  # fmt: skip


def _replay_rows(recorded: list[list[Recorded]], sweeps: int) -> list[str]:
    settings = attrs_of(recorded[0][0].trial)["settings"]
    epochs, folds = int(settings["max_epochs"]), int(settings.get("folds") or 1)
    steps, every_epoch, per_fold = epochs * folds, _epoch_curve, _fold_curve(epochs)
    always = lambda step: True  # noqa: E731
    variants = {  # label: (pruner factory, curve, steps the trial reports at)
        "median, 3 start-up trials, every 5th epoch after 5 (shipped)":
            (lambda: make_pruner("median", steps), every_epoch, decides_at("median")),
        "median, 3 start-up trials, every epoch after 5":
            (lambda: optuna.pruners.MedianPruner(3, 5), every_epoch, always),
        f"median, 5 start-up trials, every epoch after {steps // 5}":
            (lambda: optuna.pruners.MedianPruner(5, steps // 5), every_epoch, always),
        "Hyperband (the earlier default)":
            (lambda: _hyperband(steps), every_epoch, decides_at("hyperband")),
        "Hyperband, min_resource 10": (lambda: _hyperband(steps, 10), every_epoch, always),
        "none": (optuna.pruners.NopPruner, every_epoch, decides_at("none")),
    }  # fmt: skip
    if folds > 1:
        variants.update({
            "Hyperband, fold 0's epochs only":
                (lambda: _hyperband(epochs), every_epoch, lambda step: step < epochs),
            "Hyperband, once per fold (running mean)":
                (lambda: _hyperband(folds), per_fold, always),
            "median, once per fold (running mean)":
                (lambda: optuna.pruners.MedianPruner(5, 0), per_fold, always),
        })  # fmt: skip
    rows = []
    for label, (make, curve, reports) in variants.items():
        outcomes = [_replay(r, make(), curve, reports) for r in recorded]
        ran, total = sum(o["ran"] for o in outcomes), sum(o["all"] for o in outcomes)
        kept = sum(o["best kept"] for o in outcomes)
        mae = _median([o["test_mae"] for o in outcomes])
        rows.append(
            f"{label} | {ran} of {total} ({ran / total:.0%}) | {kept} of {sweeps} | {mae:.1f} |"
        )
    return rows


def _hyperband(steps: int, min_resource: int = 1) -> optuna.pruners.BasePruner:
    return optuna.pruners.HyperbandPruner(min_resource, steps, reduction_factor=3)


def _epoch_curve(recorded: Recorded) -> list[tuple[int, float, int]]:
    """(step, value, epochs trained by then) at every epoch of every fold."""
    return [(step, value, i + 1) for i, (step, value) in enumerate(recorded.curve)]


def _fold_curve(epochs: int) -> Callable:
    def curve(recorded: Recorded) -> list[tuple[int, float, int]]:
        """(fold, mean of the folds' values so far, epochs trained by then) once per fold."""
        values = attrs_of(recorded.trial)["fold_values"]
        return [(k, statistics.fmean(values[: k + 1]), (k + 1) * epochs)
                for k in range(len(values))]  # fmt: skip

    return curve


def _replay(
    sweep: list[Recorded], pruner, curve: Callable, reports: Callable[[int], bool]
) -> dict[str, float]:
    """Run `pruner` over one sweep's recorded curves in trial order, each trial reporting
    at the steps `reports` names. Epochs run and in all, whether the best trial survived,
    and the test MAE of the best survivor (the trial the sweep would have kept)."""
    study = optuna.create_study(study_name="replay", pruner=pruner)
    survivors, ran, total = [], 0, 0
    for recorded in sweep:
        trial, points = study.ask(), curve(recorded)
        total += len(recorded.curve)
        for step, value, trained in points:
            if reports(step):
                trial.report(value, step)
                if trial.should_prune():
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    ran += trained
                    break
        else:
            study.tell(trial, recorded.trial.value)
            ran += len(recorded.curve)
            survivors.append(recorded.trial)
    best = min((r.trial for r in sweep), key=lambda t: t.value)
    chosen = min(survivors, key=lambda t: t.value)
    return {"ran": ran, "all": total, "best kept": int(chosen is best),
            "test_mae": float(attrs_of(chosen)["test_mae"])}  # fmt: skip


def _counts(study: optuna.Study) -> str:
    from tuner.reports.ranking import state_counts

    counts = state_counts(study)
    return f"{counts['complete']} complete + {counts['pruned']} pruned"


def _shape(path: Path) -> str:
    arrays = np.load(path)
    train = int((arrays["split"] == "train").sum())
    _, steps, features = arrays["X"].shape
    return f"{train} / {len(arrays['X']) - train} x {steps} x {features}"


def _kept_table(title: str, kept: list[dict[str, float]]) -> list[str]:
    names = list(kept[0])
    return [
        f"Which model the chosen K-fold trial keeps ({title}); medians over the sweeps:",
        "",
        "| " + " | ".join(names) + " |",
        "|" + "---|" * len(names),
        "| " + " | ".join(f"{_median([k[n] for k in kept]):.3f}" for n in names) + " |",
        "",
    ]


if __name__ == "__main__":
    quiet_libraries()
    chosen = sys.argv[1:] or ["threshold", "pruning", "airline", "classification", "series"]
    for name in chosen:
        section = globals()[name]()
        write_section(section, f"python -m benchmarks.selection {name}")
        print(section)
