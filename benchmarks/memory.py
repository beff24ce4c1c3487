"""Memory over a long study: resident memory of one `tuner search` process after its first
finished trial and after its 50th (same process, same small space), read from /proc while
the study runs. Target: growth <= 5%."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from benchmarks.common import REPO, load, machine, scratch, verdict

SPACE = """
metric: val_mae
params:
  hidden_size: {type: int, low: 16, high: 64, log: true}
  lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
fixed: {input_len: 24, horizon: 12, max_epochs: 10}
"""


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(row for row in status if row.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def finished(folder, study: str) -> int:
    try:
        return sum(t.state.name == "COMPLETE" for t in load(folder, study).trials)
    except Exception:  # the study does not exist yet
        return 0


def main(trials: int = 50) -> str:
    folder = scratch()
    (folder / "space.yaml").write_text(SPACE)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tuner.cli",
            "search",
            "--task",
            "forecasting",
            "--space",
            "space.yaml",
            "--trials",
            str(trials),
            "--pruner",
            "none",
            "--study",
            "memory",
            "--quiet",
        ],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    readings: dict[int, float] = {}
    while process.poll() is None:
        done = finished(folder, "memory")
        if done >= 1 and 1 not in readings:
            readings[1] = rss_mib(process.pid)
        if done >= trials - 1:  # the last trial is running: the study's memory is all there
            readings[trials] = rss_mib(process.pid)
            break
        time.sleep(0.2)
    process.wait()
    growth = readings[trials] / readings[1] - 1
    return "\n".join(
        [
            f"## Memory: one process, trial 1 vs trial {trials}",
            "",
            f"Machine: {machine()}. No GPU here: GPU memory not measured.",
            "",
            "| after trial | resident memory (MiB) |",
            "|---|---|",
            f"| 1 | {readings[1]:.0f} |",
            f"| {trials} | {readings[trials]:.0f} |",
            "",
            f"**Growth: {100 * growth:+.1f}%** (target <= 5%, {verdict(growth <= 0.05)}).",
            "",
        ]
    )


if __name__ == "__main__":
    print(main())
