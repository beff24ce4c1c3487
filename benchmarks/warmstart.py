"""Warm start, measured: a study of the airline series is the source; the target is a
related series (the airline's monthly values x 1.5 with 3% noise: another carrier's
traffic). For each seed a cold study and a warm-started one (`--warm-start`, the source's
best 3) run TRIALS trials on the target; how many trials each needs to reach the cold
study's best value. Run: python -m benchmarks.warmstart (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd

from benchmarks.common import REPO, load, machine, print_and_record, run_cli, scratch

TRIALS, SEEDS = 20, (0, 1)


def related_series(path) -> None:
    air = pd.read_csv(REPO / "tasks" / "data" / "air_passengers.csv")
    noise = np.random.default_rng(0).normal(1.0, 0.03, len(air))
    column = air.columns[1]
    air[column] = (air[column] * 1.5 * noise).round(1)  # a float column now
    air.to_csv(path, index=False)


def values(folder, study: str) -> list[float]:
    """Each trial's value in trial order (pruned and failed ones: infinity)."""
    trials = load(folder, study).trials
    return [t.value if t.state.name == "COMPLETE" else float("inf") for t in trials]


def trials_to_reach(curve: list[float], target: float) -> int | None:
    """How many trials until the running best is at most `target` (None: never)."""
    best = float("inf")
    for count, value in enumerate(curve, start=1):
        best = min(best, value)
        if best <= target:
            return count
    return None


def main() -> str:
    folder = scratch()
    related_series(folder / "other_air.csv")
    common = ("search", "--task", "forecasting", "--trials", str(TRIALS), "--quiet")
    run_cli(folder, *common, "--study", "source")
    rows, ratios = [], []
    for seed in SEEDS:
        target = ("--data", "other_air.csv", "--seed", str(seed))
        run_cli(folder, *common, *target, "--study", f"cold-{seed}")
        run_cli(folder, *common, *target, "--study", f"warm-{seed}", "--warm-start", "source")
        cold, warm = values(folder, f"cold-{seed}"), values(folder, f"warm-{seed}")
        goal = min(cold)
        needed_cold, needed_warm = trials_to_reach(cold, goal), trials_to_reach(warm, goal)
        ratios.append((needed_warm or TRIALS + 1) / needed_cold)
        rows.append(
            f"| {seed} | {goal:.2f} | {needed_cold} | {needed_warm or f'> {TRIALS}'} | "
            f"{min(warm):.2f} | {min(warm[:3]):.2f} vs {min(cold[:3]):.2f} |"
        )
    median = statistics.median(ratios)
    return "\n".join([
        "## Warm start: a related series, with and without the airline study's best",
        "",
        f"Machine: {machine()}. `python -m benchmarks.warmstart`: source = the default "
        f"airline sweep ({TRIALS} trials); target = the airline x 1.5 with 3% noise. Per "
        f"seed, a cold study and one with `--warm-start source` (its best 3), {TRIALS} "
        f"trials each, default space, sampler and pruner.",
        "",
        "| seed | cold best val_mae | trials cold needed | trials warm needed | warm best | "
        "best of the first 3 (warm vs cold) |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Median warm / cold trials to reach the cold study's best: **{median:.2f}x** "
        f"(target <= 0.5x).",
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    print_and_record(main())
