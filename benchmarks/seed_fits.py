"""By hand: which model of a sweep to keep on small data. Per seed, one airline sweep of
the default forecasting search, read at two budgets (BUDGETS trials: the study resumed from
the first to the second); at each, the test MAE of the model the sweep kept, of
`tuner ensemble --top 5` and of `tuner ensemble --seeds 5` (the best trial's configuration
trained again with 5 fresh seeds). Every run is pinned to one core with one thread, two
seeds side by side. Prints a Markdown section and puts it into RESULTS.md.

    .venv/bin/python -m benchmarks.seed_fits [--seeds 0 1 2 3 4 5]

About 17 minutes of one core per seed (50 minutes on 2 cores for all six).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor

from benchmarks.common import machine, print_and_record, scratch
from benchmarks.equal_budget import CORES, free_cores, on_a_free_core
from benchmarks.peers import cli, printed_mae

BUDGETS = (20, 250)
FITS = 5
TOP = 5


def test_mae(folder, core: int, *args: str) -> float:
    """The test MAE a command prints; nan when it cannot run (too few members)."""
    try:
        return printed_mae(cli(folder, core, *args)[1])
    except RuntimeError:
        return float("nan")


def one_seed(seed: int, core: int) -> list[dict]:
    """The three test MAEs at each budget of one sweep."""
    folder, study, rows = scratch(), f"air-{seed}", []
    for budget in BUDGETS:
        _, out = cli(folder, core, "search", "--task", "forecasting", "--study", study,
                     "--seed", str(seed), "--trials", str(budget), "--quiet")  # fmt: skip
        kept = printed_mae(out)
        best = int(re.search(r"best trial (\d+)", out).group(1))
        rows.append({
            "seed": seed, "budget": budget, "trial": best, "kept": kept,
            "top": test_mae(folder, core, "ensemble", "--study", study, "--top", str(TOP)),
            "fits": test_mae(folder, core, "ensemble", "--study", study, "--seeds", str(FITS)),
        })  # fmt: skip
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def section(rows: list[dict]) -> str:
    lines = [
        "## Which model a small-data sweep keeps: its own, top-k, or fresh fits (by hand)",
        "",
        f"Machine: {machine()}. `python -m benchmarks.seed_fits`: per seed one airline sweep "
        f"of the default forecasting search (test = 1960), read after {BUDGETS[0]} and "
        f"{BUDGETS[1]} trials; at each, the test MAE of the model the sweep kept, of "
        f"`tuner ensemble --top {TOP}` and of `tuner ensemble --seeds {FITS}` (the best "
        f"trial's configuration trained again with {FITS} fresh seeds). One core and one "
        f"thread per run.",
        "",
        f"| trials | seed | best trial | kept | top-{TOP} | {FITS} fresh fits |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['budget']} | {r['seed']} | {r['trial']} | {r['kept']:.1f} | {r['top']:.1f} "
        f"| {r['fits']:.1f} |"
        for r in sorted(rows, key=lambda r: (r["budget"], r["seed"]))
    ]
    lines.append("")
    for budget in BUDGETS:
        at = [r for r in rows if r["budget"] == budget]
        kept, top, fits = (statistics.median(r[k] for r in at) for k in ("kept", "top", "fits"))
        better = sum(r["fits"] < r["kept"] for r in at)
        lines.append(
            f"- {budget} trials, median test MAE over {len(at)} seeds: kept {kept:.1f}, "
            f"top-{TOP} {top:.1f}, fresh fits **{fits:.1f}** (fresh fits / kept "
            f"{fits / kept:.2f}; better on {better} of {len(at)} seeds)"
        )
    return "\n".join([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(6)))
    seeds = parser.parse_args().seeds
    free = free_cores()
    with ThreadPoolExecutor(max_workers=len(CORES)) as pool:
        jobs = [pool.submit(on_a_free_core, free, lambda c, s=s: one_seed(s, c)) for s in seeds]
        rows = [row for job in jobs for row in job.result()]
    print_and_record(section(rows))


if __name__ == "__main__":
    main()
