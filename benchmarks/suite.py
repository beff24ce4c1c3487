"""The baselines suite (#43): benchmarks/SUITE.md's report sets, which no default was tuned
on. Per set one `tuner search` of the default space for a fixed wall budget (--minutes,
default 4) on this machine's cores; the chosen trial's test figure beside every baseline its
study records on the same test part, read back from the study: the strongest simple one
(naive / seasonal naive; majority / 1-NN) and the statistical one (ETS; trees on summary
statistics). Ratios: test MAE over the baseline's (forecasting), test error rate over the
baseline's (classification); below 1 the model wins.

Run: python -m benchmarks.suite [--minutes M] [--only NAME ...] (write the data first:
benchmarks/data/make_sets.py). Not part of `make bench`: about 10 minutes a set at 4
minutes of search (the last trial finishes past the budget), 16 sets, more than a sitting.
So each set's row is kept in benchmarks/suite_runs.json as soon as its sweep ends (with
its day and commit), and the RESULTS.md section is written from every kept row of the same
budget, naming the sets not run yet; `--table` rewrites it without sweeping.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path

import optuna
import pandas as pd

from benchmarks.common import (
    REPO,
    cpu_model,
    load,
    print_and_record,
    run_cli,
    scratch,
    verdict,
)
from benchmarks.generated import (
    business_daily_prices,
    daily_retail,
    hourly_load,
    integer_counter,
    waveforms,
)
from tuner.config.trial_attrs import of as attrs_of
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
RUNS = REPO / "benchmarks" / "suite_runs.json"


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
        **{k: v for k, v in attrs_of(chosen).items() if k.startswith("test_")},
        "trials": states.count(optuna.trial.TrialState.COMPLETE),
        "pruned": states.count(optuna.trial.TrialState.PRUNED),
        "wall": wall,
    }


def kept_runs() -> dict[str, dict]:
    """Every kept row: "<set> @ <minutes>" -> the sweep's figures, day and commit."""
    return json.loads(RUNS.read_text()) if RUNS.exists() else {}


def keep(name: str, minutes: float, result: dict) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    runs = kept_runs()
    runs[f"{name} @ {minutes:g}"] = {
        **result, "day": datetime.date.today().isoformat(), "commit": commit,
        "machine": f"{cpu_model()}, {os.cpu_count()} cores"}  # fmt: skip
    RUNS.write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n")


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
        f"{result['trials']} + {result['pruned']} pruned in {result['wall']:.0f} s "
        f"({result['day']}, {result['commit']}, {result['machine']})",
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |", to_simple, to_strong


def section(minutes: float) -> str:
    """The RESULTS.md section from every kept row of this budget, in SETS order."""
    runs = kept_runs()
    rows, simple, strong, missing = [], [], [], []
    for name in SETS:
        if f"{name} @ {minutes:g}" not in runs:
            missing.append(name)
            continue
        line, to_simple, to_strong = row(name, runs[f"{name} @ {minutes:g}"])
        rows.append(line)
        simple += [to_simple] if to_simple is not None else []
        strong += [to_strong] if to_strong is not None else []
    won = sum(r < 1 for r in simple)
    summary = (
        f"Won {won} of {len(simple)} sets against the strongest simple baseline "
        f"({won / len(simple):.0%}; target 80%: {verdict(won >= 0.8 * len(simple))}); median "
        f"ratio to it {statistics.median(simple):.2f} (target <= 0.9: "
        f"{verdict(statistics.median(simple) <= 0.9)}); median ratio to the statistical "
        f"baseline {statistics.median(strong):.2f} (goal <= 1.0: "
        f"{verdict(statistics.median(strong) <= 1.0)})."
        if simple and strong
        else "No set finished."
    )
    if missing:
        summary += f" Not run yet at {minutes:g} minutes: {', '.join(missing)}."
    return "\n".join(
        [
            "## The baselines suite: sets nobody tuned on",
            "",
            f"`python -m benchmarks.suite`: per set of "
            f"[SUITE.md](SUITE.md)'s report list one `tuner search` of the default space for "
            f"{minutes:g} minutes (no trial starts after; the last finishes); the chosen "
            f"trial's test figure (test MAE, or test accuracy) beside the baselines its study "
            f"recorded on the same test part. Ratio: MAE over MAE, or error rate over error "
            f"rate, to the strongest simple baseline (naive / seasonal naive; majority / 1-NN) "
            f"and to the statistical one (ETS; trees on summary statistics). Each row is kept "
            f"in `suite_runs.json` when its sweep ends; its last cell names its day, commit "
            f"and machine (sets run in different sittings ran on the machine of the day).",
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
    parser.add_argument("--table", action="store_true", help="only rewrite the section")
    args = parser.parse_args()
    for name in [] if args.table else SETS:
        if args.only and not any(part in name for part in args.only):
            continue
        result = sweep(name, args.minutes)
        keep(name, args.minutes, result)
        print(row(name, kept_runs()[f"{name} @ {args.minutes:g}"])[0], flush=True)
    print_and_record(section(args.minutes))


if __name__ == "__main__":
    main()
