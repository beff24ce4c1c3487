"""The baselines suite (#43): benchmarks/SUITE.md's report sets, which no default was tuned
on. Per set one `tuner search` of the default space for a fixed wall budget (--minutes,
default 4) on this machine's cores; the chosen trial's test figure beside every baseline its
study records on the same test part, read back from the study: the strongest simple one
(naive / seasonal naive; majority / 1-NN) and the statistical one (ETS; trees on summary
statistics). Ratios: test MAE over the baseline's (forecasting), test error rate over the
baseline's (classification); below 1 the model wins.

Run: python -m benchmarks.suite [--minutes M] [--only NAME ...] (write the data first:
benchmarks/data/make_sets.py). Not part of `make bench`: about 10 minutes a set at 4
minutes of search (the last trial finishes past the budget), 16 sets.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

import optuna
import pandas as pd

from benchmarks.common import REPO, load, machine, print_and_record, run_cli, scratch
from benchmarks.generated import (
    business_daily_prices,
    daily_retail,
    hourly_load,
    integer_counter,
    waveforms,
)
from tuner.reports.ranking import best_trial

DATA = REPO / "benchmarks" / "data" / "suite"
Maker = Callable[[], pd.DataFrame]
SETS: dict[str, tuple[str, Path | Maker]] = {  # name -> (task, file or generator)
    "ItalyPowerDemand": ("classification", DATA / "italypowerdemand.npz"),
    "ACSF1": ("classification", DATA / "acsf1.npz"),
    "PLAID": ("classification", DATA / "plaid.npz"),
    "waves, 4 classes": ("classification", lambda: waveforms(
        4, 300, (30, 150), shapes=("sine", "triangle", "pulse", "spike"), seed=41)),
    "waves, 7 classes": ("classification", lambda: waveforms(
        7, 700, (60, 400), noise_channel=False, seed=42,
        shapes=("square", "sawtooth", "reverse_sawtooth", "half_rectified", "staircase",
                "double_peak", "sine"))),
    "hourly load": ("forecasting", hourly_load),
    "daily retail": ("forecasting", daily_retail),
    "business-daily prices": ("forecasting", business_daily_prices),
    "co2, weekly": ("forecasting", DATA / "co2_weekly.csv"),
    "elec_equip": ("forecasting", DATA / "elec_equip.csv"),
    "seatbelts": ("forecasting", DATA / "seatbelts.csv"),
    "macrodata": ("forecasting", DATA / "macrodata.csv"),
    "sunspots": ("forecasting", DATA / "sunspots.csv"),
    "nile": ("forecasting", DATA / "nile.csv"),
    "lynx": ("forecasting", DATA / "lynx.csv"),
    "integer counter": ("forecasting", integer_counter),
}  # fmt: skip
SIMPLE = {"forecasting": ("test_naive_mae", "test_snaive_mae"),
          "classification": ("test_majority_acc", "test_1nn_acc")}  # fmt: skip
STRONG = {"forecasting": "test_ets_mae", "classification": "test_trees_acc"}
FIGURE = {"forecasting": "test_mae", "classification": "test_acc"}


def sweep(name: str, minutes: float) -> dict[str, float | int | str]:
    """One default sweep in a scratch project; the chosen trial's figures, read back."""
    task, source = SETS[name]
    folder = scratch()
    if isinstance(source, Path):
        data = source
    else:
        data = folder / "data.csv"
        source().to_csv(data, index=False)
    wall, _ = run_cli(folder, "search", "--task", task, "--data", str(data), "--study", "suite",
                      "--trials", "10000", "--timeout", str(int(minutes * 60)), "--quiet",
                      timeout=int(minutes * 60) + 3600)  # fmt: skip
    study = load(folder, "suite")
    chosen = best_trial(study)
    if chosen is None:
        return {"error": "no complete trial"}
    states = [t.state for t in study.trials]
    return {
        **{k: v for k, v in chosen.user_attrs.items() if k.startswith("test_")},
        "trials": states.count(optuna.trial.TrialState.COMPLETE),
        "pruned": states.count(optuna.trial.TrialState.PRUNED),
        "wall": wall,
    }


def ratio(task: str, model: float, baseline: float) -> float:
    """Below 1 the model wins: MAE over MAE, or error rate over error rate."""
    if task == "classification":
        model, baseline = 1 - model, 1 - baseline
    if baseline == 0:
        return 1.0 if model == 0 else float("inf")
    return model / baseline


def row(name: str, result: dict) -> tuple[str, float | None, float | None]:
    """A table row, the ratio to the strongest simple baseline and to the statistical one."""
    task = SETS[name][0]
    if "error" in result:
        return f"| {name} | {task} | {result['error']} | | | | |", None, None
    figure = result[FIGURE[task]]
    simple = {k: result[k] for k in SIMPLE[task] if k in result}
    pick = min if task == "forecasting" else max
    best_simple = pick(simple, key=lambda k: simple[k])
    to_simple = ratio(task, figure, simple[best_simple])
    strong = result.get(STRONG[task])
    to_strong = ratio(task, figure, strong) if strong is not None else None
    shown = ", ".join(f"{k.removeprefix('test_')} {v:.3f}" for k, v in simple.items())
    cells = [
        name, task, f"**{figure:.3f}**", shown,
        f"{to_simple:.2f} ({'won' if to_simple < 1 else 'LOST'})",
        f"{strong:.3f}: {to_strong:.2f}" if strong is not None else "n/a",
        f"{result['trials']} + {result['pruned']} pruned in {result['wall']:.0f} s",
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |", to_simple, to_strong


def section(rows: list[str], simple: list[float], strong: list[float], minutes: float) -> str:
    won = sum(r < 1 for r in simple)
    summary = (
        f"Won {won} of {len(simple)} sets against the strongest simple baseline (target: 80%); "
        f"median ratio to it {statistics.median(simple):.2f} (target <= 0.9); median ratio to "
        f"the statistical baseline {statistics.median(strong):.2f} (goal <= 1.0)."
        if simple and strong
        else "No set finished."
    )
    return "\n".join(
        [
            "## The baselines suite: sets nobody tuned on",
            "",
            f"Machine: {machine()}. `python -m benchmarks.suite`: per set of "
            f"[SUITE.md](SUITE.md)'s report list one `tuner search` of the default space for "
            f"{minutes:g} minutes (no trial starts after; the last finishes); the chosen "
            f"trial's test figure (test MAE, or test accuracy) beside the baselines its study "
            f"recorded on the same test part. Ratio: MAE over MAE, or error rate over error "
            f"rate, to the strongest simple baseline (naive / seasonal naive; majority / 1-NN) "
            f"and to the statistical one (ETS; trees on summary statistics).",
            "",
            "| set | task | test figure | simple baselines | ratio to the strongest | "
            "statistical: ratio | sweep |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            summary,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--only", nargs="*", help="set names (or parts of them) to run")
    args = parser.parse_args()
    rows, to_simple, to_strong = [], [], []
    for name in SETS:
        if args.only and not any(part in name for part in args.only):
            continue
        line, simple, strong = row(name, sweep(name, args.minutes))
        print(line, flush=True)
        rows.append(line)
        to_simple += [simple] if simple is not None else []
        to_strong += [strong] if strong is not None else []
    print_and_record(section(rows, to_simple, to_strong, args.minutes))


if __name__ == "__main__":
    main()
