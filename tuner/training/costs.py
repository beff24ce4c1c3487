"""Measuring a model's costs (tuner.config.goals declares them and the constraints on
them): parameter count and size from its tensors, latency as the median of timed forwards."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

LATENCY_REPEATS = 5  # timed forwards after one warm-up; their median is the latency


def measure_costs(
    model: Any, inputs: Sequence[Any], members: int, latency: bool
) -> dict[str, float]:
    """The costs of a trial's model, measured on one fresh member before it trains: its
    architecture fixes them, whatever the weights. A trial keeping `members` models (K-fold)
    deploys all of them, one forward each."""
    costs = {
        "params": members * sum(p.numel() for p in model.parameters()),
        "size_mb": members * weights_mb([model]),
    }
    if latency:
        costs["latency_ms"] = members * _latency_ms(model, inputs)
    return costs


def weights_mb(models: Sequence[Any]) -> float:
    """The models' weights and buffers in MiB, as they sit in memory."""
    tensors = [t for m in models for t in (*m.parameters(), *m.buffers())]
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def _latency_ms(model: Any, inputs: Sequence[Any]) -> float:
    device = next(model.parameters()).device
    inputs = [x.to(device) if hasattr(x, "to") else x for x in inputs]
    was_training = model.training
    model.eval()
    times = []
    with torch.inference_mode():
        for _ in range(LATENCY_REPEATS + 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            model(*inputs)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append((time.perf_counter() - start) * 1000)
    model.train(was_training)
    return statistics.median(times[1:])


def exported_costs(model: Any, inputs: Sequence[Any], members: int, form: str) -> dict[str, float]:
    """`latency_ms_<form>` and `size_mb_<form>`: the fresh model's forward on `inputs`
    written as `form` graphs (tuner.contract.onnx_graphs) and timed on ONNX Runtime."""
    from tuner.contract import onnx_graphs
    from tuner.contract.exported import OnnxForward, recording

    was_training = model.training
    model.eval()
    with recording(model) as calls, torch.no_grad():
        model(*inputs)
    model.train(was_training)
    with tempfile.TemporaryDirectory(prefix="tuner-costs-") as folder:
        graphs = onnx_graphs.write_graphs(model, calls[0], Path(folder), "m", form == "int8")
        forward = OnnxForward(graphs, Path(folder), threads=1)
        batch_ms = onnx_graphs.latency_ms(forward, tuple(inputs), per_sequence=False)
        size = onnx_graphs.size_mb(sorted(Path(folder).glob("*.onnx")))
    return {f"latency_ms_{form}": members * batch_ms, f"size_mb_{form}": members * size}
