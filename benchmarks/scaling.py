"""Trials per minute with 1 worker and with 2 workers on this machine, same space, same seed,
measured in one run (`python -m benchmarks.scaling`).

Rate = finished trials / (last trial's end - first trial's start), read from the study, so
process start-up is not counted; the wall time with start-up is reported beside it.
"""

from __future__ import annotations

import argparse

from benchmarks.common import load, machine, search_in_scratch, verdict

SPACE = """
metric: val_mae
params:
  hidden_size: {type: int, low: 16, high: 64, log: true}
  lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
fixed: {input_len: 24, horizon: 12, max_epochs: 30}
"""


def measure(workers: int, trials: int) -> dict[str, float]:
    folder, wall = search_in_scratch(
        SPACE,
        "--trials",
        str(trials),
        "--workers",
        str(workers),
        "--pruner",
        "none",
        "--study",
        "scaling",
        "--seed",
        "0",
    )
    finished = [t for t in load(folder, "scaling").trials if t.state.name == "COMPLETE"]
    span = (
        max(t.datetime_complete for t in finished) - min(t.datetime_start for t in finished)
    ).total_seconds()
    return {
        "workers": workers,
        "trials": len(finished),
        "span_s": span,
        "per_minute": 60 * len(finished) / span,
        "wall_s": wall,
    }


def main() -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=12)
    args = parser.parse_args([])
    one, two = measure(1, args.trials), measure(2, args.trials)
    ratio = two["per_minute"] / one["per_minute"]
    lines = [
        "## Scaling: 1 vs 2 workers (forecasting, airline, 30 epochs, no pruning)",
        "",
        f"Machine: {machine()}.",
        "",
        "| workers | trials | trials / minute | trial span (s) | wall with start-up (s) |",
        "|---|---|---|---|---|",
    ]
    for row in (one, two):
        lines.append(
            f"| {row['workers']} | {row['trials']} | {row['per_minute']:.1f} | "
            f"{row['span_s']:.1f} | {row['wall_s']:.1f} |"
        )
    lines += [
        "",
        f"**Ratio 2 workers / 1 worker: {ratio:.2f}x** (target >= 1.7x, {verdict(ratio >= 1.7)}).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
