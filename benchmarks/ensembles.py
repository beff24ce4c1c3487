"""Top-k ensembles, measured: per seed, one study, then `tuner ensemble --top 3` and
`--top 5` of it; the test metric of the best single trial against each ensemble's, on the
same test part. The airline with the default forecasting space (members of other windows
and transforms read the best trial's), and JapaneseVowels with the default classification
space on a smaller budget. Run: python -m benchmarks.ensembles
(about 25 minutes on 2 cores).
"""

from __future__ import annotations

import re
import statistics

from benchmarks.common import machine, print_and_record, run_cli, scratch

SEEDS = range(6)
CASES = {
    # name: (task, metric, lower is better, study options)
    "airline": ("forecasting", "test_mae", True, ("--trials", "20")),
    "JapaneseVowels": ("classification", "test_acc", False,
                       ("--trials", "12", "--max-epochs", "15")),
}  # fmt: skip
TOPS = (3, 5)


def ensemble_metric(folder, study: str, top: int, metric: str) -> tuple[float, float] | None:
    """(ensemble, best trial alone) on the test part, as `tuner ensemble` prints them;
    None when fewer than 2 trials could be members."""
    try:
        _, out = run_cli(folder, "ensemble", "--study", study, "--top", str(top))
    except RuntimeError:
        return None
    found = re.search(rf"{metric} = ([0-9.]+)  \(best trial alone: ([0-9.]+)\)", out)
    return (float(found.group(1)), float(found.group(2))) if found else None


def run_case(name: str) -> tuple[list[str], dict[int, list[float]]]:
    task, metric, lower, options = CASES[name]
    rows, gains = [], {top: [] for top in TOPS}
    for seed in SEEDS:
        folder, study = scratch(), f"{name}-{seed}"
        run_cli(folder, "search", "--task", task, "--seed", str(seed), "--study", study,
                "--quiet", *options)  # fmt: skip
        cells, single = [], None
        for top in TOPS:
            measured = ensemble_metric(folder, study, top, metric)
            if measured is None:
                cells.append("n/a")
                continue
            value, single = measured
            gain = (single - value) if lower else (value - single)
            gains[top].append(gain)
            cells.append(f"{value:.3f} ({gain:+.3f})")
        rows.append(
            f"| {name} | {seed} | {single:.3f} | {' | '.join(cells)} |"
            if single is not None
            else f"| {name} | {seed} | n/a | n/a | n/a |"
        )
    return rows, gains


def main() -> str:
    lines = [
        "## Top-k ensembles against the best single trial",
        "",
        f"Machine: {machine()}. `python -m benchmarks.ensembles`: per seed one study "
        f"(airline: the default forecasting sweep, 20 trials; "
        f"JapaneseVowels: default classification space, 12 trials of at most 15 epochs), "
        f"then `tuner ensemble --top 3` and `--top 5`. Test metric of the best trial alone "
        f"and of each ensemble on the same test part; in brackets the ensemble's gain "
        f"(MAE: lower is better, accuracy: higher).",
        "",
        "| data | seed | best trial | top-3 (gain) | top-5 (gain) |",
        "|---|---|---|---|---|",
    ]
    summary = []
    for name, (_, metric, _, _) in CASES.items():
        rows, gains = run_case(name)
        lines += rows
        for top, values in gains.items():
            if values:
                summary.append(f"{name} top-{top}: median gain in {metric} "
                               f"**{statistics.median(values):+.3f}** over {len(values)} seeds "
                               f"({sum(v > 0 for v in values)} better, "
                               f"{sum(v < 0 for v in values)} worse)")  # fmt: skip
    return "\n".join([*lines, "", *(f"- {line}" for line in summary), ""])


if __name__ == "__main__":
    print_and_record(main())
