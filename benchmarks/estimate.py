"""How good the sweep's estimate of the time left is: three studies of different tasks, 10
trials each on the shipped data and default spaces (epochs capped so a study fits a few
minutes), the estimate read from the trial line printed after the 5th finished trial and set
against the time the remaining 5 actually took (from that line to the last). Target: within
+-30%. Run: python -m benchmarks.estimate (about 20 minutes on 2 cores)."""

from __future__ import annotations

import re
import subprocess
import sys
import time

from benchmarks.common import REPO, machine, print_and_record, scratch, verdict

STUDIES = {  # task: what keeps one study within a few minutes here
    "forecasting": ("--set", "max_epochs=15"),
    "classification": ("--set", "max_epochs=4"),
    "charlm": ("--set", "max_epochs=1", "--set", "hidden_size=64"),
}
TRIALS, READ_AT, SEEDS = 10, 5, (1, 2)
LEFT = re.compile(r"~(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)? left for (\d+) trial")


def seconds_of(match: re.Match) -> float:
    hours, minutes, seconds = (int(part or 0) for part in match.groups()[:3])
    return 3600 * hours + 60 * minutes + seconds


def timed_lines(task: str, extra: tuple[str, ...], seed: int) -> list[tuple[float, str]]:
    """Each trial line of `tuner search` with the moment it was printed."""
    command = [sys.executable, "-m", "tuner.cli", "search", "--task", task, "--trials",
               str(TRIALS), "--pruner", "median", "--seed", str(seed), *extra]  # fmt: skip
    process = subprocess.Popen(command, cwd=scratch(), stdout=subprocess.PIPE, text=True,
                               env={"PYTHONPATH": str(REPO), **_env()})  # fmt: skip
    lines = [(time.monotonic(), line) for line in process.stdout if line.startswith("trial ")]
    process.wait()
    return lines


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


def measure(task: str, extra: tuple[str, ...], seed: int) -> tuple[float, float]:
    """(the estimate after READ_AT trials, the seconds the rest took)."""
    lines = timed_lines(task, extra, seed)
    read_at, line = lines[READ_AT - 1]
    found = LEFT.search(line)
    if found is None or int(found.group(4)) != TRIALS - READ_AT:
        raise RuntimeError(f"{task}: no estimate for {TRIALS - READ_AT} trials in {line!r}")
    return seconds_of(found), lines[-1][0] - read_at


def main() -> str:
    rows, ratios = [], []
    for task, extra in STUDIES.items():
        for seed in SEEDS:
            estimate, actual = measure(task, extra, seed)
            ratios.append(estimate / actual)
            rows.append(f"| {task} (`{' '.join(extra)}`), seed {seed} | {estimate:.0f} | "
                        f"{actual:.0f} | {estimate / actual:.2f} |")  # fmt: skip
    met = all(0.7 <= ratio <= 1.3 for ratio in ratios)
    return "\n".join([
        "## The sweep's estimate of the time left",
        "",
        f"Machine: {machine()}. `python -m benchmarks.estimate`: `tuner search --task T "
        f"--trials {TRIALS}` on the shipped data and default space, epochs capped as shown; "
        f"the estimate printed with the {READ_AT}th finished trial (the pace at which "
        f"trials ended after the first three, pruned ones included, times the trials left) "
        f"against the seconds the "
        f"other {TRIALS - READ_AT} took. Two studies per task (seeds {SEEDS[0]} and "
        f"{SEEDS[1]}: other params, so other trial lengths), one run each.",
        "",
        "| study | estimate (s) | actual (s) | estimate / actual |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Target: every ratio within 0.7-1.3 (+-30%): {verdict(met)}.",
    ])  # fmt: skip


if __name__ == "__main__":
    print_and_record(main())
