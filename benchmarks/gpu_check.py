"""GPU path check (run where a CUDA GPU is present): 2 workers share GPU 0
(`--trials-per-device 2`), bf16 mixed precision, 4 trials; prints each trial's device and
peak GPU memory as recorded in the study. `python -m benchmarks.gpu_check`."""

from __future__ import annotations

import sys

import torch

from benchmarks.common import load, machine, print_and_record, search_in_scratch
from tuner.config.trial_attrs import of as attrs_of

SPACE = """
metric: val_mae
params:
  hidden_size: {type: int, low: 64, high: 256, log: true}
fixed: {input_len: 24, horizon: 12, max_epochs: 20}
"""


def main() -> str:
    if not torch.cuda.is_available():
        sys.exit("no CUDA device visible: run this on a GPU machine")
    folder, wall = search_in_scratch(
        SPACE,
        "--trials",
        "4",
        "--workers",
        "2",
        "--devices",
        "0",
        "--trials-per-device",
        "2",
        "--precision",
        "bf16-mixed",
        "--pruner",
        "none",
        "--study",
        "gpu",
    )
    lines = [
        "## GPU path check",
        "",
        f"Machine: {machine()}; GPU: {torch.cuda.get_device_name(0)}; 2 workers on GPU 0, "
        f"bf16-mixed, wall {wall:.1f} s.",
        "",
        "| trial | state | worker | device | val_mae | peak GPU MiB |",
        "|---|---|---|---|---|---|",
    ]
    for trial in load(folder, "gpu").trials:
        attrs = attrs_of(trial)
        lines.append(
            f"| {trial.number} | {trial.state.name} | {attrs.get('worker')} | "
            f"{attrs.get('device')} | {trial.value:.2f} | {attrs.get('gpu_peak_mib')} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print_and_record(main())
