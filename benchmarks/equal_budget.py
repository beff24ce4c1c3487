"""By hand: lstm-tuner against NeuralForecast's AutoLSTM at AutoLSTM's own wall time, the
comparison `make bench` makes in `peers.at_equal_budget`, in about half its wall.

Every run is pinned to one CPU core with one torch thread, two runs side by side: AutoLSTM
seeds 0-2, then lstm-tuner seeds 0-5, each given AutoLSTM seed (i % 3)'s wall as its
`--timeout` (as many trials as fit). Both sides get the same share of the machine, so the
budget is equal; on 2 cores the whole run takes about 1.5x the sum of AutoLSTM's walls
instead of 3x. Needs NF_PYTHON (an interpreter with neuralforecast, as `make bench`).

    NF_PYTHON=.venv-bench/bin/python .venv/bin/python -m benchmarks.equal_budget

An AutoLSTM seed can take an hour on one core, and the whole run (3 seeds, 6 sweeps) about
5 hours: longer than one sitting. So every run's result goes to stderr as a JSON line the
moment it ends (`AutoLSTM {...}`, `lstm-tuner {...}`), and `--known FILE` (such lines)
reuses them instead of running them again: an AutoLSTM seed by its seed, a sweep by its
number, the wall it was given and its fresh fits (`peers.FRESH_FITS`).
`equal_budget_runs.txt` (beside this file) keeps the lines measured so far, so the run can
be finished over several sittings:

    NF_PYTHON=... python -m benchmarks.equal_budget --known benchmarks/equal_budget_runs.txt \
        2>> benchmarks/equal_budget_runs.txt

`--seeds` and `--per-wall` make a shorter run (fewer AutoLSTM seeds, fewer lstm-tuner
sweeps at each wall). Prints a Markdown section for RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import queue
import statistics
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from functools import partial
from itertools import chain
from pathlib import Path
from typing import NamedTuple

from benchmarks.common import cpu_model, machine, print_and_record, verdict
from benchmarks.peers import (
    FITS_RESERVE,
    FRESH_ARGS,
    FRESH_COUNT,
    FRESH_LABEL,
    FRESH_SEEDS,
    FRESH_TOP,
    SEEDS,
    script,
    within,
)

CORES = (0, 1)


def free_cores() -> queue.Queue[int]:
    """The cores runs take one at a time (`on_a_free_core`)."""
    free: queue.Queue[int] = queue.Queue()
    for core in CORES:
        free.put(core)
    return free


def on_a_free_core(free: queue.Queue[int], run: Callable[[int], dict]) -> dict:
    core = free.get()
    try:
        return run(core)
    finally:
        free.put(core)


def measure(
    nf_python: str, seeds: list[int], per_wall: int, known: Known
) -> tuple[list[dict], list[dict]]:
    """AutoLSTM's seeds (those not `known`), then lstm-tuner's sweeps (those not known at
    that wall) as soon as the wall they need is known: sweep i + k * len(SEEDS) at AutoLSTM
    seed i's wall, numbered so whichever `seeds` a sitting runs."""
    free = free_cores()
    with ThreadPoolExecutor(max_workers=len(CORES)) as pool:

        def submit(run: Callable[[int], dict]) -> Future:
            return pool.submit(on_a_free_core, free, run)

        def autolstm(seed: int, core: int) -> dict:
            result = {"seed": seed, **script(nf_python, "peer_autolstm", seed, core), **sitting()}
            print(f"AutoLSTM {json.dumps(result)}", file=sys.stderr, flush=True)
            return result

        def sweep(number: int, wall: float, core: int) -> dict:
            result = {"seed": number, **within(number, wall, core), **sitting()}
            print(f"lstm-tuner {json.dumps(result)}", file=sys.stderr, flush=True)
            return result

        theirs = [submit(partial(autolstm, s)) for s in seeds if s not in known.autolstm]
        finished, tuner = {}, {}
        mine: list[Future] = []
        ready = [known.autolstm[s] for s in seeds if s in known.autolstm]
        for done in chain(ready, as_completed(theirs)):
            result = done if isinstance(done, dict) else done.result()
            finished[result["seed"]] = result
            for k in range(per_wall):
                number = result["seed"] + k * len(SEEDS)
                earlier = known.sweeps.get((number, round(result["wall"]), FRESH_ARGS))
                if earlier:
                    tuner[number] = earlier
                else:
                    mine.append(submit(partial(sweep, number, result["wall"])))
        tuner.update({r["seed"]: r for r in (f.result() for f in as_completed(mine))})
    return [finished[s] for s in seeds], [tuner[s] for s in sorted(tuner)]


def section(autolstm: list[dict], tuner: list[dict]) -> str:
    def per_run(runs: list[dict], key: str, fmt: str) -> str:
        return ", ".join(fmt.format(r[key]) for r in runs)

    kept = statistics.median(r["test_mae"] for r in tuner)
    fits = statistics.median(r["fits_mae"] for r in tuner)
    their_mae = statistics.median(r["test_mae"] for r in autolstm)
    seeds = ", ".join(str(r["seed"]) for r in autolstm)
    ours = ", ".join(str(r["seed"]) for r in tuner)
    trials = ", ".join(f"{r['trials']} ({r['pruned']})" for r in tuner)
    return "\n".join(
        [
            "## At AutoLSTM's wall time: one core each, two runs side by side",
            "",
            f"Machine: {machine()}. `python -m benchmarks.equal_budget`: every run pinned to "
            f"one core with one thread; lstm-tuner seed i gets the wall of AutoLSTM's run "
            f"i % {len(SEEDS)}: its search `--timeout` that wall less {FITS_RESERVE} s "
            f"(`--trials 1000`), then {FRESH_LABEL} (the {FRESH_TOP} best trials' "
            f"configurations trained again with {FRESH_SEEDS} fresh seeds each) in what is "
            f"left.",
            "",
            "| | seeds | wall (s) | test MAE per seed | median test MAE | trials (pruned) |",
            "|---|---|---|---|---|---|",
            f"| NeuralForecast AutoLSTM | {seeds} | {per_run(autolstm, 'wall', '{:.0f}')} | "
            f"{per_run(autolstm, 'test_mae', '{:.1f}')} | {their_mae:.1f} | 10 each |",
            f"| lstm-tuner, default search: the model it kept | {ours} | "
            f"{per_run(tuner, 'wall', '{:.0f}')} | {per_run(tuner, 'test_mae', '{:.1f}')} | "
            f"{kept:.1f} | {trials} |",
            f"| lstm-tuner, then {FRESH_LABEL} | {ours} | "
            f"{per_run(tuner, 'total_wall', '{:.0f}')} | "
            f"{per_run(tuner, 'fits_mae', '{:.1f}')} | {fits:.1f} | + {FRESH_COUNT} fits |",
            "",
            f"Target (median test MAE below AutoLSTM's, {len(tuner)} sweeps): kept model "
            f"{kept:.1f}, fresh fits {fits:.1f}, vs {their_mae:.1f}: "
            f"{verdict_of_one_sitting(autolstm + tuner, min(kept, fits) < their_mae)}.",
        ]
    )


def sitting() -> dict[str, str]:
    """When and on what CPU a run was measured, so a section never compares sittings."""
    return {"date": datetime.date.today().isoformat(), "cpu": cpu_model()}


def verdict_of_one_sitting(runs: list[dict], met: bool) -> str:
    """A verdict only where every run was measured on one day on one CPU: walls and
    scores of other sittings are not comparable (the machine type's CPU varies by day)."""
    sittings = {(r.get("date"), r.get("cpu")) for r in runs}
    if len(sittings) == 1 and None not in next(iter(sittings)):
        return verdict(met)
    return f"no verdict: the runs come from {len(sittings)} sittings (or undated ones)"


class Known(NamedTuple):
    autolstm: dict[int, dict]  # by seed
    sweeps: dict[tuple[int, int, str], dict]  # by (number, wall given in whole s, its fits)


def known_results(path: Path | None) -> Known:
    """Runs an earlier sitting measured: its stderr's `AutoLSTM {...}` and `lstm-tuner
    {...}` lines (the last of each seed or sweep wins; other lines are skipped)."""
    lines = path.read_text().splitlines() if path else []

    def results(kind: str) -> list[dict]:
        return [json.loads(line.split(" ", 1)[1]) for line in lines if line.startswith(kind)]

    return Known(
        {r["seed"]: r for r in results("AutoLSTM ")},
        {(r["seed"], round(r["budget"]), r["fits"]): r for r in results("lstm-tuner ")},
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--per-wall", type=int, default=2)
    parser.add_argument("--known", type=Path)
    args = parser.parse_args()
    known = known_results(args.known)
    print_and_record(section(*measure(os.environ["NF_PYTHON"], args.seeds, args.per_wall, known)))
