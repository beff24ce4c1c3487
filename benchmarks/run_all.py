"""`make bench`: run the benchmarks and rewrite the sections of benchmarks/RESULTS.md below
its mark (the sections above it come from the longer scripts, each run on its own)."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks import (
    demo_figures,
    first_trial,
    memory,
    mlflow_models,
    overhead,
    peers,
    scaling,
)
from benchmarks.common import BENCH_MARK as MARK
from benchmarks.common import stamped

RESULTS = Path(__file__).parent / "RESULTS.md"


def main() -> None:
    started = time.perf_counter()
    benchmarks = [demo_figures, overhead, first_trial, peers, memory, scaling, mlflow_models]
    sections = [stamped(b.main(), f"make bench ({b.__name__})") for b in benchmarks]
    minutes = (time.perf_counter() - started) / 60
    sections.insert(0, f"_This `make bench` ran for {minutes:.1f} minutes (target < 30)._\n")
    kept = RESULTS.read_text().split(MARK)[0] if RESULTS.exists() else "# Benchmark results\n\n"
    RESULTS.write_text(kept.rstrip() + "\n\n" + MARK + "\n\n" + "\n".join(sections))
    print("\n".join(sections))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
