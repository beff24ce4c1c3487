"""Default sweeps on generated data nobody tuned the defaults on (RESULTS.md: "Defaults
from the data"): seasonal series of each frequency the forecasting task names, plus integer
steps, and waveform sets of 2-8 classes, lengths 20-500, with and without a noise channel.

Each set gets one `tuner search` of the default space for a fixed wall budget (--minutes,
default 4) on the shipped code on 2 cores. With --before DIR (a checkout of earlier code
with its own venv: `git worktree add DIR REV`, `cp -a .venv DIR/`, `DIR/.venv/bin/pip
install --no-deps -e DIR`) the same sweep runs on that code at the same time, each on one
core. The test figure stands beside seasonal naive (forecasting) or the majority class and a
1-nearest-neighbour on six shape statistics of the signal (classification), on the sweep's
own test part.

Run: python -m benchmarks.data_defaults [--minutes M] [--before DIR] [--only NAME ...]
Not part of `make bench`: 4 minutes a set, 13 sets (twice with --before).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import REPO, machine, print_and_record, scratch
from benchmarks.generated import FREQUENCIES, seasonal_series, shape_statistics, waveforms
from tuner.tasks.classification.data import DEFAULTS, assign_splits, read_sequences

WAVEFORM_SETS = {  # name -> waveforms() arguments
    "2 classes, 20-60 steps, noise channel": dict(classes=2, n=100, lengths=(20, 60), seed=11),
    "3 classes, 100-500 steps": dict(classes=3, n=90, lengths=(100, 500), noise_channel=False,
                                     seed=12),
    "5 classes, 40-120 steps, noise channel": dict(classes=5, n=200, lengths=(40, 120),
                                                   seed=13),
    "8 classes, 30-90 steps": dict(classes=8, n=240, lengths=(30, 90), noise_channel=False,
                                   seed=14),
    "10 classes, 50-200 steps, noise channel": dict(classes=10, n=300, lengths=(50, 200),
                                                    seed=15),
}  # fmt: skip
FIGURE = re.compile(r"test_(mae|acc) = ([\d.]+)")
BASELINE = re.compile(r"test_(snaive_mae|majority_acc) = ([\d.]+)")


def sets() -> dict[str, tuple[str, pd.DataFrame]]:
    """name -> (task, data) for every generated set."""
    found = {f"{name} series": ("forecasting", seasonal_series(name)) for name in FREQUENCIES}
    for name, arguments in WAVEFORM_SETS.items():
        found[name] = ("classification", waveforms(**arguments))
    return found


def sweep(
    task: str, data: pd.DataFrame, minutes: float, code: Path, threads: int = 2
) -> dict[str, float]:
    """One default sweep of `code` in a scratch project: its test figure, baseline and
    trial count."""
    folder = scratch()
    data.to_csv(folder / "data.csv", index=False)
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": str(threads)}
    python = code / ".venv" / "bin" / "python"
    argv = ["search", "--task", task, "--data", "data.csv", "--trials", "10000",
            "--timeout", str(int(minutes * 60))]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(
        [str(python if python.exists() else sys.executable), "-m", "tuner.cli", *argv],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=int(minutes * 60) + 900,
    )
    figure, baseline = FIGURE.search(done.stdout), BASELINE.search(done.stdout)
    if done.returncode != 0 or not figure or not baseline:
        print(f"tuner {' '.join(argv)} in {folder}:\n{done.stdout}\n{done.stderr}", flush=True)
        return {"error": (done.stderr.strip().splitlines() or ["no figure"])[-1][:120]}
    trials = re.search(r": (\d+) complete, (\d+) pruned", done.stdout)
    return {
        "test": float(figure.group(2)),
        "baseline": float(baseline.group(2)),
        "trials": int(trials.group(1)) + int(trials.group(2)) if trials else 0,
        "wall": time.perf_counter() - started,
    }


def nearest_neighbour(data: pd.DataFrame) -> float:
    """1-NN on shape statistics of the signal, trained on every non-test sequence of the
    split the classification task makes (stratified, seed 0), scored on its test part."""
    sequences = read_sequences({"data": data})
    split = assign_splits(sequences, {**DEFAULTS, "folds": 1})
    features = np.array([shape_statistics(s[:, 0]) for s in sequences.sequences])
    labels = np.asarray(sequences.labels)
    train, test = split != "test", split == "test"
    mean, std = features[train].mean(0), features[train].std(0) + 1e-12
    a, b = (features[train] - mean) / std, (features[test] - mean) / std
    distances = ((b[:, None, :] - a[None, :, :]) ** 2).sum(-1)
    return float((labels[train][distances.argmin(1)] == labels[test]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare with")
    parser.add_argument("--only", nargs="*", help="set names (or parts of them) to run")
    args = parser.parse_args()
    rows = []
    for name, (task, data) in sets().items():
        if args.only and not any(part in name for part in args.only):
            continue
        if args.before:
            with ThreadPoolExecutor(2) as pool:
                running = [pool.submit(sweep, task, data, args.minutes, code, 1)
                           for code in (REPO, args.before)]  # fmt: skip
                after, before = (future.result() for future in running)
        else:
            after, before = sweep(task, data, args.minutes, REPO), None
        rows.append(_row(name, task, data, before, after))
        print(rows[-1], flush=True)
    print_and_record(_section(rows, args))


def _row(name: str, task: str, data: pd.DataFrame, before: dict | None, after: dict) -> str:
    better = "lower" if task == "forecasting" else "higher"
    neighbour = f"{nearest_neighbour(data):.3f}" if task == "classification" else ""
    return (
        f"| {name} | {task} ({better} is better) | {_figure(before)} | "
        f"{_figure(after, '**')} | {neighbour} |"
    )


def _figure(result: dict | None, bold: str = "") -> str:
    """test figure (trials run; the baseline on the same test part)."""
    if result is None:
        return "not run"
    if "error" in result:
        return f"failed: {result['error']}"
    return f"{bold}{result['test']:.3f}{bold} ({result['trials']}; {result['baseline']:.3f})"


def _section(rows: list[str], args: argparse.Namespace) -> str:
    return "\n".join(
        [
            "## Defaults from the data: generated sets nobody tuned on",
            "",
            f"Machine: {machine()}. `python -m benchmarks.data_defaults`: per set one "
            f"`tuner search` of the default space for {args.minutes:g} minutes "
            f"({'before and after side by side, one core each' if args.before else '2 cores'}"
            f"); each cell: test figure (trials run; baseline on the same test part). "
            f"Test MAE (forecasting, the last horizon of each series, so a longer default "
            f"horizon is a harder test) or test accuracy "
            f"(classification, a stratified 20% test part). Baseline: seasonal naive or the "
            f"majority class; 1-NN: nearest "
            f"neighbour on six shape statistics of the signal, same split. Before: "
            f"{_revision(args.before) if args.before else 'not run in this sitting'}.",
            "",
            "| set | task | before | after | 1-NN |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )


def _revision(folder: Path) -> str:
    """The commit a checkout holds, for the record."""
    found = subprocess.run(["git", "-C", str(folder), "log", "-1", "--format=%h"],
                           capture_output=True, text=True)  # fmt: skip
    return f"commit {found.stdout.strip()[:80]}" if found.returncode == 0 else str(folder)


if __name__ == "__main__":
    main()
