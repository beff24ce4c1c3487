"""What a sweep spends between two trials (the end of one to the start of the next: Optuna's
collection, the callbacks, the next trial's sampling), and the sweep's wall time, on two
commits of the code in the same run: a BEFORE checkout (a git worktree) and this one,
alternating, 3 runs each. The sweep: 12 trials of a small forecasting space (one hold-out,
8 epochs), so a trial lasts well under a second and what is between trials shows.
Run: python -m benchmarks.between_trials REV   (REV: the commit before; about 4 minutes)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, load, machine, print_and_record, scratch

SPACE = """metric: val_mae
direction: minimize
params:
  hidden_size: {type: int, low: 8, high: 32, log: true}
  lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
fixed: {input_len: 24, horizon: 12, max_epochs: 8, batch_size: 32, folds: 1}
"""
TRIALS, RUNS = 12, 3


def sweep(code: Path) -> tuple[float, float]:
    """(median seconds between trials, wall seconds) of one sweep run with `code`."""
    folder = scratch()
    (folder / "space.yaml").write_text(SPACE)
    env = {**os.environ, "PYTHONPATH": str(code)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tuner.cli", "search", "--task", "forecasting",
                    "--space", "space.yaml", "--trials", str(TRIALS), "--study", "gap",
                    "--quiet"], cwd=folder, env=env, check=True, capture_output=True)  # fmt: skip
    wall = time.perf_counter() - started
    trials = sorted(load(folder, "gap").trials, key=lambda t: t.number)
    gaps = [(b.datetime_start - a.datetime_complete).total_seconds()
            for a, b in zip(trials, trials[1:], strict=False)]  # fmt: skip
    return statistics.median(gaps), wall


def main(before: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        old = Path(folder) / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), before],
                       check=True, capture_output=True)  # fmt: skip
        try:
            runs = {"before": [], "after": []}
            for _ in range(RUNS):
                runs["before"].append(sweep(old))
                runs["after"].append(sweep(REPO))
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)],
                           check=False, capture_output=True)  # fmt: skip
    gap = {k: statistics.median(g for g, _ in v) for k, v in runs.items()}
    wall = {k: statistics.median(w for _, w in v) for k, v in runs.items()}
    return "\n".join([
        "## Between trials",
        "",
        f"Machine: {machine()}. `python -m benchmarks.between_trials {before}`: a "
        f"forecasting sweep of {TRIALS} trials (a small space, one hold-out, 8 epochs), "
        f"{RUNS} runs alternating between the commit before ({before}) and this one; the "
        f"time from one trial's end to the next one's start (median over the sweep, then "
        f"over runs) and the sweep's wall time (median).",
        "",
        "| code | between trials (s) | sweep wall (s) |",
        "|---|---|---|",
        f"| before ({before}) | {gap['before']:.3f} | {wall['before']:.1f} |",
        f"| after | {gap['after']:.3f} | {wall['after']:.1f} |",
        "",
        f"Between trials: {gap['after'] / gap['before']:.2f}x; sweep wall time: "
        f"{wall['after'] / wall['before']:.2f}x.",
    ])  # fmt: skip


if __name__ == "__main__":
    print_and_record(main(sys.argv[1]))
