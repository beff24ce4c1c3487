"""GPU speed, prepared for a lent GPU (not part of `make bench`; `python -m
benchmarks.gpu_speed`: 6 minutes on an H200 with 1, 2, 4 and 8 workers; 1 and 4 only are
meant to fit the 5 minutes of a lent device's 15, not yet measured so):

1. the overhead benchmark on the GPU: the same plain PyTorch loop and lstm-tuner trial as
   benchmarks/overhead.py, data on the device, in 32-true and bf16-mixed;
2. trials per minute of 1 and 4 workers packed on GPU 0 (`--workers N --devices 0
   --trials-per-device N`), with the GPU's utilisation sampled by nvidia-smi meanwhile.

Writes its section of RESULTS.md, naming the card.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading

import torch

from benchmarks.common import REPO, load, machine, search_in_scratch, write_section
from benchmarks.overhead import measure

SPACE = """
metric: val_mae
params:
  hidden_size: {type: int, low: 64, high: 256, log: true}
fixed: {input_len: 24, horizon: 12, max_epochs: 30, folds: 1}
"""
PACKED = (1, 4)  # #46: 4 packed trials >= 3x one trial's trials per minute


def overhead_rows(folder: str) -> list[str]:
    air = str(REPO / "tasks" / "data" / "air_passengers.csv")
    rows = []
    for precision in ("32-true", "bf16-mixed"):
        plain, ours, *_ = measure(folder, air, 30, 16, 3, "gpu", precision)
        ratio = statistics.median(ours) / statistics.median(plain)
        rows.append(
            f"| {precision} | {statistics.median(plain):.4f} | {statistics.median(ours):.4f} "
            f"| **{ratio:.2f}** |"
        )
    return rows


class Utilisation:
    """nvidia-smi's GPU utilisation, sampled every 0.5 s while a sweep runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.process = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
             "-i", "0", "-lms", "500"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.strip().isdigit():
                self.samples.append(float(line))

    def stop(self) -> float:
        self.process.terminate()
        self.reader.join(timeout=5)
        return statistics.fmean(self.samples) if self.samples else float("nan")


def packed_rows() -> list[str]:
    rows, one = [], None
    for workers in PACKED:
        trials = 4 * workers
        gauge = Utilisation()
        folder, wall = search_in_scratch(
            SPACE, "--trials", str(trials), "--workers", str(workers), "--devices", "0",
            "--trials-per-device", str(workers), "--pruner", "none", "--study", "packed",
        )  # fmt: skip
        busy = gauge.stop()
        study = load(folder, "packed")
        starts = [t.datetime_start for t in study.trials if t.datetime_complete]
        ends = [t.datetime_complete for t in study.trials if t.datetime_complete]
        span = (max(ends) - min(starts)).total_seconds()
        per_minute = 60 * len(ends) / span
        one = one or per_minute
        rows.append(
            f"| {workers} | {len(ends)} | {per_minute:.1f} | {per_minute / one:.2f}x | "
            f"{busy:.0f}% | {wall:.0f} |"
        )
    return rows


def main() -> str:
    if not torch.cuda.is_available():
        sys.exit("no CUDA device visible: run this on a GPU machine")
    card = torch.cuda.get_device_name(0)
    folder = tempfile.mkdtemp(prefix="tuner-gpu-speed-")
    return "\n".join(
        [
            "## GPU speed: overhead and packed trials (`python -m benchmarks.gpu_speed`)",
            "",
            f"Machine: {machine()}; card: {card} (torch {torch.__version__}).",
            "",
            "Airline, hidden 64, batch 16, 30 epochs, 3 runs each, alternating (a) and (b):",
            "",
            "| precision | (a) plain loop s/epoch | (b) lstm-tuner trial s/epoch | b / a |",
            "|---|---|---|---|",
            *overhead_rows(folder),
            "",
            "Workers packed on GPU 0 (`--trials-per-device N`), 4 trials per worker, 30 epochs:",
            "",
            "| workers | trials | trials / minute | vs 1 worker | mean GPU utilisation | "
            "wall (s) |",
            "|---|---|---|---|---|---|",
            *packed_rows(),
            "",
        ]
    )


if __name__ == "__main__":
    section = main()
    write_section(section)
    print(section)
