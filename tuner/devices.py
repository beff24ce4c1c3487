"""Which device a worker trains on: a GPU when asked for and present, else CPU threads."""

from __future__ import annotations

import torch

from tuner.errors import UsageError

CHOICES = ("auto", "cpu", "gpu")


def pick_accelerator(devices: str = "auto") -> str:
    """Lightning accelerator name for `--devices` (auto: the GPU when one is visible)."""
    if devices not in CHOICES:
        raise UsageError(f"--devices {devices!r}: expected one of {', '.join(CHOICES)}")
    if devices == "gpu" and not torch.cuda.is_available():
        raise UsageError(
            "--devices gpu: no CUDA device is visible to torch on this machine; "
            "use --devices cpu or auto"
        )
    if devices == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return devices


def describe(accelerator: str) -> str:
    """What a trial's MLflow run records as its device."""
    if accelerator == "gpu":
        index = torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({torch.get_num_threads()} threads)"
