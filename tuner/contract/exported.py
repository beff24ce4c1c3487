"""A model's forward answered by ONNX Runtime: the exported graphs of `tuner export`
(tuner.models.export) put back in place of each model's own forward, so the task's code
around it (windows, scaling, decoding, generation, the validation step) runs unchanged and
the table it answers is the float model's table.

A forward is called with a structure of tensors (a tuple holding a recurrent state, a None
where no state is given yet); each structure a model was called with is its own graph, named
by that structure's `signature`, and its outputs are rebuilt in the structure they had."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tuner.contract.members import carried, forward_slot, own_forward
from tuner.errors import CheckpointError

MANIFEST = "export.json"


def flatten(value: Any) -> tuple[list[torch.Tensor], Any]:
    """The tensors of a nested tuple/list (None kept in the structure), and the structure."""
    if isinstance(value, torch.Tensor):
        return [value], "t"
    if value is None:
        return [], "n"
    if isinstance(value, (tuple, list)):
        tensors, parts = [], []
        for item in value:
            inner, part = flatten(item)
            tensors += inner
            parts.append(part)
        return tensors, parts
    raise TypeError(f"a forward input or output of type {type(value).__name__}")


def unflatten(structure: Any, tensors: list[torch.Tensor]) -> Any:
    """`flatten` undone: the structure with the tensors in order."""
    queue = iter(tensors)

    def build(part: Any) -> Any:
        if part == "t":
            return next(queue)
        if part == "n":
            return None
        return tuple(build(item) for item in part)

    return build(structure)


def signature(structure: Any) -> str:
    """A structure as a key: `t,(t,t)` for (x, (h, c)); `t,n` for (x, None)."""
    if isinstance(structure, str):
        return structure
    return "(" + ",".join(signature(part) for part in structure) + ")"


def models_of(model: nn.Module) -> list[nn.Module]:
    """The models a forward runs: the model and those it carries (fold models, members)."""
    return [model, *carried(model)]


def set_own_forward(model: nn.Module, forward: Any) -> None:
    """Answer for the model itself with `forward`; a carrier still combines its members."""
    setattr(model, forward_slot(model), forward)


@contextmanager
def recording(model: nn.Module) -> Iterator[list[dict[str, tuple[tuple, Any]]]]:
    """While open, the first call of each input structure of each model's own forward,
    (inputs, outputs) by signature, one dict per model of `models_of`."""
    models = models_of(model)
    calls: list[dict[str, tuple[tuple, Any]]] = [{} for _ in models]
    replaced = [m.__dict__.get(forward_slot(m)) for m in models]
    for seen, member in zip(calls, models, strict=True):
        set_own_forward(member, _recorder(seen, own_forward(member)))
    try:
        yield calls
    finally:
        for member, before in zip(models, replaced, strict=True):
            if before is None:
                member.__dict__.pop(forward_slot(member), None)
            else:
                set_own_forward(member, before)


def _recorder(seen: dict, original: Any) -> Any:
    def forward(*inputs: Any) -> Any:
        output = original(*inputs)
        key = signature(flatten(inputs)[1])
        if key not in seen:
            seen[key] = (inputs, output)
        return output

    return forward


class OnnxForward:
    """One model's forward over its ONNX graphs (one per input structure), on CPU."""

    def __init__(self, graphs: dict[str, dict[str, Any]], folder: Path, threads: int = 0):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        options.log_severity_level = 3  # warnings about unused initialisers are not the user's
        self.graphs = {}
        for key, graph in graphs.items():
            session = ort.InferenceSession(str(folder / graph["file"]), options,
                                           ["CPUExecutionProvider"])  # fmt: skip
            used = {given.name for given in session.get_inputs()}  # the exporter drops unused
            self.graphs[key] = (session, graph["outputs"], used)

    def __call__(self, *inputs: Any) -> Any:
        tensors, structure = flatten(inputs)
        key = signature(structure)
        if key not in self.graphs:
            raise CheckpointError(
                f"the exported model has no graph for a forward on {key} "
                f"(it has {', '.join(self.graphs)}); export it again from its source"
            )
        session, outputs, used = self.graphs[key]
        feed = {f"in{i}": t.detach().cpu().numpy() for i, t in enumerate(tensors)}
        feed = {name: array for name, array in feed.items() if name in used}
        answered = session.run(None, feed)
        return unflatten(outputs, [torch.from_numpy(a) for a in answered])


def attach(model: nn.Module, folder: Path, form: str, threads: int = 0) -> nn.Module:
    """Answer `model`'s forwards (its own, its members') with the `form` graphs of the
    export in `folder` (its manifest names them)."""
    manifest = read_manifest(folder)
    members = manifest["forms"].get(form)
    if members is None or len(members) != len(models_of(model)):
        raise CheckpointError(f"{folder}: no {form} export of {len(models_of(model))} model(s)")
    for member, graphs in zip(models_of(model), members, strict=True):
        set_own_forward(member, OnnxForward(graphs, folder, threads))
    return model


def read_manifest(folder: Path) -> dict[str, Any]:
    """The export's manifest, read as data: every file it names is a plain name inside
    `folder` (a manifest never points the loader elsewhere)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        names = [manifest["checkpoint"]] + [
            graph["file"] for members in manifest["forms"].values() for graphs in members
            for graph in graphs.values()
        ]  # fmt: skip
    except (OSError, ValueError, AttributeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{folder}: not an lstm-tuner export ({exc})") from None
    outside = [n for n in names if not isinstance(n, str) or Path(n).name != n or n in ("", "..")]
    if outside:
        raise CheckpointError(f"{folder}: its {MANIFEST} names files outside it: {outside[:3]}")
    return manifest
