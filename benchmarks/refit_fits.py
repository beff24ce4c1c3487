"""By hand: fresh fits of a sweep's best configurations, trained as the sweep trains (the
K backtests, each fold's best validation epoch, the newest half of the folds kept: what
`tuner ensemble --seeds` averages), against the same configurations refitted on every
non-test month for their folds' median best epoch count, as NeuralForecast's Auto models
refit before they predict. Per seed one airline sweep of the default forecasting search
(test = 1960); its top TOP trials, SEEDS fits each, all fits averaged. Every seed runs
pinned to one core with one thread, two side by side. Prints a Markdown section and
puts it into RESULTS.md.

    .venv/bin/python -m benchmarks.refit_fits [--seeds 0 1 2 3] [--trials 60] [--keep DIR]

About 14 minutes of one core per seed at 60 trials (the sweep 10, the fits 3.5). `--keep DIR`
keeps each seed's sweep in DIR/s<seed> and reuses a finished one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.common import REPO, load, machine, print_and_record, scratch
from benchmarks.equal_budget import CORES, free_cores, on_a_free_core
from benchmarks.peers import cli, timed
from tuner.config.trial_attrs import of as attrs_of

TOP, SEEDS = 5, 3
DATA = REPO / "tasks" / "data" / "air_passengers.csv"
COLUMNS = {
    "kept": "kept (the sweep's)",
    "newest": f"top-{TOP} x {SEEDS} fold fits (newest half)",
    "all_folds": f"top-{TOP} x {SEEDS}, all folds",
    "refit": f"top-{TOP} x {SEEDS} refits",
    "single_refit": "one refit (median)",
}


def fits(folder: Path, seed: int) -> dict[str, float]:
    """Test MAEs of the study's kept model and of its top trials' fits (this process)."""
    import torch

    from benchmarks.selection import fold_outputs, refit_output

    torch.set_num_threads(1)
    study = load(folder, f"air-{seed}")
    done = sorted((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    newest, every, refits = [], [], []
    for trial in done[:TOP]:
        for k in range(1, SEEDS + 1):
            outputs, target, best = fold_outputs("forecasting", DATA, trial, seed + 100 * k)
            newest.append(torch.stack(outputs[: -(-len(outputs) // 2)]).mean(0))
            every.append(torch.stack(outputs).mean(0))
            epochs = int(statistics.median(e + 1 for e in best))
            refits.append(refit_output("forecasting", DATA, trial, seed + 100 * k, epochs))

    def mae(outputs: list) -> float:
        return float((torch.stack(outputs).mean(0) - target).abs().mean())

    return {
        "seed": seed,
        "kept": float(attrs_of(done[0])["test_mae"]),
        "newest": mae(newest),
        "all_folds": mae(every),
        "refit": mae(refits),
        "single_refit": statistics.median(mae([r]) for r in refits),
    }


def one_seed(seed: int, trials: int, keep: Path | None, core: int) -> dict[str, float]:
    folder = scratch() if keep is None else keep / f"s{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "swept").exists():
        cli(folder, core, "search", "--task", "forecasting", "--study", f"air-{seed}",
            "--seed", str(seed), "--trials", str(trials), "--quiet")  # fmt: skip
        (folder / "swept").touch()
    command = [sys.executable, "-m", "benchmarks.refit_fits", "--fits-of", str(folder), str(seed)]
    row = json.loads(timed(command, str(REPO), core)[2])
    print(row, file=sys.stderr, flush=True)
    return row


def section(rows: list[dict[str, float]], trials: int) -> str:
    lines = [
        "| seed | " + " | ".join(COLUMNS.values()) + " |",
        "|---|" + "---|" * len(COLUMNS),
        *(
            f"| {r['seed']} | " + " | ".join(f"{r[c]:.1f}" for c in COLUMNS) + " |"
            for r in sorted(rows, key=lambda r: r["seed"])
        ),
        "| median | "
        + " | ".join(f"**{statistics.median(r[c] for r in rows):.1f}**" for c in COLUMNS)
        + " |",
    ]
    return "\n".join(
        [
            "## Refits on every non-test month against fold fits",
            "",
            f"Machine: {machine()}. `python -m benchmarks.refit_fits --trials {trials}`: test "
            f"MAE on 1960, one {trials}-trial airline sweep per seed.",
            "",
            *lines,
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the sweeps here")
    parser.add_argument("--fits-of", nargs=2, metavar=("FOLDER", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fits_of:  # one seed's fits, in the process `one_seed` pinned to a core
        print(json.dumps(fits(Path(args.fits_of[0]), int(args.fits_of[1]))))
        return
    free = free_cores()

    def seed_on(seed: int) -> Callable[[int], dict[str, float]]:
        return lambda core: one_seed(seed, args.trials, args.keep, core)

    with ThreadPoolExecutor(max_workers=len(CORES)) as pool:
        rows = [
            r.result() for r in [pool.submit(on_a_free_core, free, seed_on(s)) for s in args.seeds]
        ]
    print_and_record(section(rows, args.trials))


if __name__ == "__main__":
    main()
