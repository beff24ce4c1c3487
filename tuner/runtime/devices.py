"""Which device each worker trains on: one GPU per worker (or K workers per GPU), or an
equal share of the CPU cores, never more threads than cores."""

from __future__ import annotations

import os
from dataclasses import dataclass

from tuner.errors import UsageError

CHOICES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker process sees: its GPU (CUDA_VISIBLE_DEVICES) or none, and threads."""

    index: int
    gpu: str | None
    threads: int

    def environment(self) -> dict[str, str]:
        # an empty CUDA_VISIBLE_DEVICES hides every GPU from a CPU worker
        return {
            "CUDA_VISIBLE_DEVICES": self.gpu if self.gpu is not None else "",
            "OMP_NUM_THREADS": str(self.threads),
            "MKL_NUM_THREADS": str(self.threads),
        }

    @property
    def accelerator(self) -> str:
        return "gpu" if self.gpu is not None else "cpu"


WORKERS_PER_CORE = 4  # CPU workers a core can take (small trials spend time on their stores)


def plan_workers(
    workers: int,
    devices: str,
    trials_per_device: int = 1,
    cpu_count: int | None = None,
    gpu_count: int | None = None,
) -> list[WorkerPlan]:
    """Assign devices to `workers` processes.

    Args:
        devices: auto (GPUs when present, else CPU), cpu, gpu, or GPU indices "0,1,2".
        trials_per_device: how many workers share one GPU (small trials fit together).
    """
    if workers < 1:
        raise UsageError(f"--workers {workers}: expected 1 or more")
    if trials_per_device < 1:
        raise UsageError(f"--trials-per-device {trials_per_device}: expected 1 or more")
    cpu_count = cpu_count or os.cpu_count() or 1
    gpus = _gpu_list(devices, gpu_count_here() if gpu_count is None else gpu_count)
    if gpus:
        slots = len(gpus) * trials_per_device
        if workers > slots:
            raise UsageError(
                f"--workers {workers}: only {len(gpus)} GPU(s) x "
                f"--trials-per-device {trials_per_device} = {slots} slots"
            )
        threads = max(1, cpu_count // workers)
        return [WorkerPlan(i, gpus[i // trials_per_device], threads) for i in range(workers)]
    if workers > WORKERS_PER_CORE * cpu_count:
        raise UsageError(
            f"--workers {workers}: at most {WORKERS_PER_CORE * cpu_count} on this machine "
            f"({cpu_count} CPU cores x {WORKERS_PER_CORE}); each worker is a process that "
            f"trains, and more than the cores can run only wait for them"
        )
    threads = max(1, cpu_count // workers)
    return [WorkerPlan(i, None, threads) for i in range(workers)]


def _gpu_list(devices: str, gpu_count: int) -> list[str]:
    if devices == "cpu":
        return []
    if devices in ("auto", "gpu"):
        if devices == "gpu" and gpu_count == 0:
            raise UsageError(
                "--devices gpu: no CUDA device is visible to torch on this machine;"
                " use --devices cpu or auto"
            )
        return [str(i) for i in range(gpu_count)]
    indices = [part.strip() for part in devices.split(",")]
    bad = [i for i in indices if not i.isdigit() or int(i) >= gpu_count]
    if bad:
        raise UsageError(
            f"--devices {devices!r}: GPU {bad[0]} does not exist here "
            f"({gpu_count} visible); expected auto, cpu, gpu or indices like 0,1"
        )
    return indices


def gpu_count_here() -> int:
    """CUDA devices torch sees (torch is imported here, when a command plans a search)."""
    import torch

    return torch.cuda.device_count()


def pick_accelerator(devices: str = "auto") -> str:
    """Lightning accelerator for a single-process search."""
    plan = plan_workers(1, devices)[0]
    return plan.accelerator


def describe(accelerator: str) -> str:
    """What a trial's MLflow run records as its device."""
    import torch

    if accelerator == "gpu":
        index = torch.cuda.current_device()
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", str(index))
        return f"cuda:{index} (visible {visible}, {torch.cuda.get_device_name(index)})"
    return f"cpu ({torch.get_num_threads()} threads)"


# oneDNN, which runs torch's LSTM on CPUs, keeps every kernel it built for a shape (1024 by
# default). A sweep draws new shapes at every trial (hidden size, layers, batch), so a long
# study's memory grew with its trials: +8.8% from trial 1 to 50 of a small forecasting
# space. A trial needs a few dozen (a 3-layer bidirectional LSTM trained on two batch shapes
# and validated on two more: 32 slowed its epochs by ~10%, 64 did not; benchmarks/JOURNAL.md).
KERNEL_CACHE = "64"


def bound_kernel_cache() -> None:
    """Keep oneDNN's kernel cache to KERNEL_CACHE shapes in this process (and the workers it
    starts), unless the user set ONEDNN_PRIMITIVE_CACHE_CAPACITY; oneDNN reads it when it
    first builds a kernel, so this runs before the first trial."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", KERNEL_CACHE)
