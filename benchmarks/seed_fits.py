"""By hand: which model of a sweep to keep on small data. Per seed, one airline sweep of
the default forecasting search, read at two budgets (BUDGETS trials: the study resumed from
the first to the second); at each, the test MAE of the model the sweep kept, of
`tuner ensemble --top 5` and of fresh fits (`tuner ensemble --seeds N [--top K]`: the best
K trials' configurations trained again with N fresh seeds each). Every run is pinned to one
core with one thread, two seeds side by side. Prints a Markdown section and puts it into
RESULTS.md.

    .venv/bin/python -m benchmarks.seed_fits [--seeds 0 1 2 3 4 5] [--budgets 20 250]
        [--fresh 1:5 3:3 5:3] [--keep DIR]

About 25 minutes of one core per seed (75 minutes on 2 cores for all six). `--keep DIR`
keeps each seed's sweep in DIR/s<seed> and reuses what is there: a sweep already at a
budget is read, not run again. `--fresh K:N ...` names the fresh fits to compare.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.common import machine, print_and_record, scratch
from benchmarks.equal_budget import CORES, free_cores, on_a_free_core
from benchmarks.peers import cli, printed_mae

BUDGETS = (20, 250)
TOP = 5
FRESH = ((1, 5), (3, 3), (5, 3))  # (K best trials, N seeds each) trained again


def test_mae(folder, core: int, *args: str) -> float:
    """The test MAE a command prints; nan when it cannot run (too few members)."""
    try:
        return printed_mae(cli(folder, core, *args)[1])
    except RuntimeError:
        return float("nan")


def one_seed(
    seed: int, core: int, budgets: list[int], fresh: list[tuple[int, int]], keep: Path | None
) -> list[dict]:
    """The test MAEs at each budget of one sweep."""
    folder, study, rows = scratch() if keep is None else keep / f"s{seed}", f"air-{seed}", []
    folder.mkdir(parents=True, exist_ok=True)
    for budget in budgets:
        _, out = cli(folder, core, "search", "--task", "forecasting", "--study", study,
                     "--seed", str(seed), "--trials", str(budget), "--quiet")  # fmt: skip
        kept = printed_mae(out)
        best = int(re.search(r"best trial (\d+)", out).group(1))
        rows.append({
            "seed": seed, "budget": budget, "trial": best, "kept": kept,
            "top": test_mae(folder, core, "ensemble", "--study", study, "--top", str(TOP)),
            **{(k, n): test_mae(folder, core, "ensemble", "--study", study, "--top", str(k),
                                "--seeds", str(n)) for k, n in fresh},
        })  # fmt: skip
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def section(rows: list[dict], budgets: list[int], runs: list[tuple[int, int]]) -> str:
    fresh = [f"top-{k} x {n} fresh" if k > 1 else f"best x {n} fresh" for k, n in runs]
    lines = [
        "## Which model a small-data sweep keeps: its own, top-k, or fresh fits",
        "",
        f"Machine: {machine()}. `python -m benchmarks.seed_fits`: per seed one airline sweep "
        f"of the default forecasting search (test = 1960), read after "
        f"{' and '.join(map(str, budgets))} trials; at each, the test MAE of the model the "
        f"sweep kept, of `tuner ensemble --top {TOP}` and of fresh fits (`tuner ensemble "
        f"--top K --seeds N`: the best K trials' configurations trained again with N fresh "
        f"seeds each, all fits averaged). One core and one thread per run.",
        "",
        f"| trials | seed | best trial | kept | top-{TOP} | {' | '.join(fresh)} |",
        "|---|---|---|---|---|" + "---|" * len(runs),
    ]
    lines += [
        f"| {r['budget']} | {r['seed']} | {r['trial']} | {r['kept']:.1f} | {r['top']:.1f} | "
        + " | ".join(f"{r[kn]:.1f}" for kn in runs)
        + " |"
        for r in sorted(rows, key=lambda r: (r["budget"], r["seed"]))
    ]
    lines.append("")
    for budget in budgets:
        at = [r for r in rows if r["budget"] == budget]
        kept, top = (statistics.median(r[k] for r in at) for k in ("kept", "top"))
        each = [
            f"{label} {statistics.median(r[kn] for r in at):.1f} (better than kept on "
            f"{sum(r[kn] < r['kept'] for r in at)})"
            for label, kn in zip(fresh, runs, strict=True)
        ]
        lines.append(
            f"- {budget} trials, median test MAE over {len(at)} seeds: kept {kept:.1f}, "
            f"top-{TOP} {top:.1f}, {', '.join(each)}"
        )
    return "\n".join([*lines, ""])


def fresh_fits(text: str) -> tuple[int, int]:
    """K:N, the best K configurations with N fresh fits each."""
    top, seeds = text.split(":")
    return int(top), int(seeds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(6)))
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS))
    parser.add_argument("--fresh", type=fresh_fits, nargs="+", default=list(FRESH))
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the sweeps here")
    args = parser.parse_args()
    free = free_cores()

    def seed_on(seed: int) -> Callable[[int], list[dict]]:
        return lambda core: one_seed(seed, core, args.budgets, args.fresh, args.keep)

    with ThreadPoolExecutor(max_workers=len(CORES)) as pool:
        jobs = [pool.submit(on_a_free_core, free, seed_on(s)) for s in args.seeds]
        rows = [row for job in jobs for row in job.result()]
    print_and_record(section(rows, args.budgets, args.fresh))


if __name__ == "__main__":
    main()
