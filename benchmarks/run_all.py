"""`make bench`: run the benchmarks and write benchmarks/RESULTS.md (measured sections are
regenerated; the quality section records sweeps too long for `make bench`, see quality.py)."""

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

RESULTS = Path(__file__).parent / "RESULTS.md"


def main() -> None:
    started = time.perf_counter()
    sections = [
        demo_figures.main(),
        overhead.main(),
        first_trial.main(),
        peers.main(),
        memory.main(),
        scaling.main(),
        mlflow_models.main(),
    ]
    minutes = (time.perf_counter() - started) / 60
    sections.insert(0, f"_This `make bench` ran for {minutes:.1f} minutes (target < 30)._\n")
    kept = RESULTS.read_text().split(MARK)[0] if RESULTS.exists() else "# Benchmark results\n\n"
    RESULTS.write_text(kept.rstrip() + "\n\n" + MARK + "\n\n" + "\n".join(sections))
    print("\n".join(sections))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
