"""The quality sweeps of benchmarks/RESULTS.md: each task's default space on its shipped
data, stopped after 9 minutes (`--timeout 540`: no trial starts after that), on this
machine's 2 cores. Run: python -m benchmarks.quality [classification|digits|charlm]."""

from __future__ import annotations

import sys

from benchmarks.common import REPO, run_cli, scratch

SWEEPS = {
    "classification": ("classification", "japanese_vowels.npz"),
    "digits": ("classification", "digits.npz"),
    "charlm": ("charlm", "tinyshakespeare.txt"),
}


def run(name: str) -> str:
    task, data = SWEEPS[name]
    folder = scratch()
    wall, output = run_cli(
        folder,
        "search",
        "--task",
        task,
        "--data",
        str(REPO / "tasks" / "data" / data),
        "--trials",
        "200",
        "--timeout",
        "540",
        "--quiet",
    )
    return f"wall {wall:.0f} s\n{output}"


if __name__ == "__main__":
    for name in sys.argv[1:] or list(SWEEPS):
        print(run(name))
