"""`make bench`: run the benchmarks and write benchmarks/RESULTS.md (measured sections are
regenerated; the quality section records sweeps too long for `make bench`, see quality.py)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import memory, overhead, peers, scaling

RESULTS = Path(__file__).parent / "RESULTS.md"
MARK = "<!-- measured by make bench: everything below is regenerated -->"


def main() -> None:
    sections = [overhead.main(), peers.main(), memory.main(), scaling.main()]
    kept = RESULTS.read_text().split(MARK)[0] if RESULTS.exists() else "# Benchmark results\n\n"
    RESULTS.write_text(kept.rstrip() + "\n\n" + MARK + "\n\n" + "\n".join(sections))
    print("\n".join(sections))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
