"""A trained model's forwards written as ONNX graphs, float or int8, and timed.

The exporter is torch's TorchScript-based one (`torch.onnx.export(..., dynamo=False)`): it
writes `pack_padded_sequence` as the sequence lengths of ONNX's own LSTM operator, so the
classifier's and the speech model's packed batches of mixed lengths export exactly (a
bidirectional LSTM included). The newer torch.export-based exporter refuses packed
sequences, and torch has said the TorchScript one will be removed: docs/export.md says so.
Every dimension of every input and output is dynamic (batch, time, a state's batch).
int8 is ONNX Runtime's dynamic quantisation of those graphs: weights of the LSTM and
linear layers in int8, activations quantised per batch as they run; torch's own
quantisation is deprecated (torch.ao)."""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tuner.contract.exported import OnnxForward, flatten, unflatten
from tuner.contract.members import own_forward
from tuner.errors import UsageError

OPSET = 17


def _expm1(g: Any, x: Any) -> Any:  # exp(x) - 1: the forecaster's log transform undone
    return g.op("Sub", g.op("Exp", x), g.op("Constant", value_t=torch.tensor(1.0)))


def _log1p(g: Any, x: Any) -> Any:  # log(1 + x): its log transform
    return g.op("Log", g.op("Add", x, g.op("Constant", value_t=torch.tensor(1.0))))


# operators opset 17 lacks, as the ONNX operators that compute them (checked like the rest:
# the largest output difference against the float model)
torch.onnx.register_custom_op_symbolic("aten::expm1", _expm1, OPSET)
torch.onnx.register_custom_op_symbolic("aten::log1p", _log1p, OPSET)
TIMED = 20  # forwards timed after one warm-up; their median is the latency


class _Flat(nn.Module):
    """A model's own forward on flat tensors, as the exporter needs: the structure it was
    called with rebuilt inside, its outputs flattened."""

    def __init__(self, model: nn.Module, structure: Any) -> None:
        super().__init__()
        self.model, self.structure = model, structure

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        inputs = unflatten(self.structure, list(tensors))
        return tuple(flatten(own_forward(self.model)(*inputs))[0])


def write_graphs(
    model: nn.Module, calls: dict[str, tuple[tuple, Any]], folder: Path, prefix: str, int8: bool
) -> dict[str, dict[str, Any]]:
    """One graph per input structure `model` was called with (`calls`, as recorded by
    tuner.contract.exported.recording), written to `folder`; the manifest's entries."""
    graphs = {}
    for number, (key, (inputs, outputs)) in enumerate(calls.items()):
        tensors, structure = flatten(inputs)
        out_tensors, out_structure = flatten(outputs)
        file = folder / f"{prefix}-{number}.onnx"
        try:
            with _quiet_exporter():
                torch.onnx.export(
                    _Flat(model, structure).eval(),
                    tuple(tensors),
                    str(file),
                    input_names=[f"in{i}" for i in range(len(tensors))],
                    output_names=[f"out{i}" for i in range(len(out_tensors))],
                    dynamic_axes=_all_axes("in", tensors) | _all_axes("out", out_tensors),
                    opset_version=OPSET,
                    dynamo=False,
                )
        except Exception as exc:  # the exporter's own errors: an operator it cannot write
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(
                f"{type(model).__name__}'s forward cannot be written as ONNX: {reason}"
            ) from None
        if int8:
            file = _quantised(file)
        graphs[key] = {"file": file.name, "outputs": out_structure}
    return graphs


def _all_axes(prefix: str, tensors: list[torch.Tensor]) -> dict[str, dict[int, str]]:
    return {f"{prefix}{i}": {d: f"{prefix}{i}_{d}" for d in range(t.dim())}
            for i, t in enumerate(tensors)}  # fmt: skip


def _quantised(file: Path) -> Path:
    """The graph's int8 form beside it (the float one removed)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = file.with_name(file.stem + "-int8.onnx")
    root = logging.getLogger()  # the quantiser's advice ("run pre-processing") goes here
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        quantize_dynamic(str(file), str(target), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    file.unlink()
    return target


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's notes (its deprecation, shape inference of packed sequences, printed
    by its C++ side on stderr) are not the user's: held back, and shown if it fails."""
    held = tempfile.TemporaryFile()
    saved = os.dup(2)
    os.dup2(held.fileno(), 2)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            yield
    except BaseException:
        os.dup2(saved, 2)
        held.seek(0)
        os.write(2, held.read()[-4000:])
        raise
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        held.close()


def largest_difference(forward: OnnxForward, calls: dict[str, tuple[tuple, Any]]) -> float:
    """The largest absolute difference between the graphs' outputs and the float model's
    on the recorded calls."""
    largest = 0.0
    for inputs, outputs in calls.values():
        answered = flatten(forward(*inputs))[0]
        for got, expected in zip(answered, flatten(outputs)[0], strict=True):
            difference = (got.float() - expected.detach().float()).abs().max().item()
            largest = max(largest, difference)
    return largest


def latency_ms(forward: Any, inputs: tuple, per_sequence: bool = True) -> float:
    """Milliseconds of one forward on `inputs` (a batch) on one thread, the median of TIMED
    runs; per sequence: over the batch's size."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    times = []
    try:
        with torch.inference_mode():
            for _ in range(TIMED + 1):
                start = time.perf_counter()
                forward(*inputs)
                times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    batch = (flatten(inputs)[0][0].shape[0] or 1) if per_sequence else 1
    return 1000 * statistics.median(times[1:]) / batch


def size_mb(files: list[Path]) -> float:
    return sum(f.stat().st_size for f in files) / 2**20
