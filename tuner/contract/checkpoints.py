"""Save / load / verify checkpoints: self-describing, written atomically, loaded safely.

A checkpoint is a plain dict of tensors and primitives (task name, hyperparameters,
resolved settings, metrics), so `torch.load(weights_only=True)` reads it without running
any pickled code, and Lightning's `load_from_checkpoint` reads it too.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import zipfile
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tuner.config.files import regular_file
from tuner.contract.members import MEMBER_HPARAMS, MEMBERS, RULE, RULES, carried, carry
from tuner.errors import CheckpointError

if TYPE_CHECKING:
    from tuner.contract.task import Task

FORMAT = "lstm-tuner/1"
MAX_MEMBERS = 100  # a checkpoint never makes us build more models than this
REQUIRED = ("format", "task", "hyper_parameters", "state_dict", "settings")
SHAPES = {
    "format": str,
    "task": str,
    "hyper_parameters": dict,
    "state_dict": dict,
    "settings": dict,
    "meta": dict,
    MEMBERS: int,
    MEMBER_HPARAMS: list,
    RULE: str,
}


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    task: str,
    settings: dict[str, Any],
    meta: dict[str, Any],
) -> Path:
    """Write atomically (temp file + rename): a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "task": task,
        "hyper_parameters": dict(model.hparams),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "settings": dict(settings),
        "meta": dict(meta),
        "pytorch-lightning_version": version("lightning"),  # not `import lightning`: 4 s
    }
    members = carried(model)  # a K-fold trial's fold models, or a top-k ensemble's
    if members:
        payload[MEMBERS] = len(members)
        payload[MEMBER_HPARAMS] = [dict(member.hparams) for member in members]
        if getattr(model, "combine_rule", ""):
            payload[RULE] = model.combine_rule
    buffer = io.BytesIO()  # torch's writer reports a full disk as a RuntimeError: write here
    torch.save(payload, buffer)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(buffer.getbuffer())
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, task: str | None = None) -> dict[str, Any]:
    """Read and verify a checkpoint; with `task`, refuse one made by another task."""
    path = Path(path)
    regular_file(path, "checkpoint file", "a .ckpt file lstm-tuner wrote", CheckpointError)
    payload = _verified(path, _read(path))
    if task is not None and payload["task"] != task:
        raise CheckpointError(
            f"{path}: checkpoint of task {payload['task']!r}, but task {task!r} was asked for"
        )
    return payload


def _read(path: Path) -> Any:
    """The archive's contents, loaded as tensors and plain values only (never code)."""
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated, or not a file written by torch.save)"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused: loading it would run code it names "
            f"({str(exc).splitlines()[-1][:100]}); only tensors and plain "
            f"values are loaded"
        ) from None
    except Exception as exc:  # a damaged archive fails in many ways (pickle memo, EOF, CRC)
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated or damaged: "
            f"{str(exc).splitlines()[0][:120]})"
        ) from None


def _verified(path: Path, payload: Any) -> dict[str, Any]:
    """An lstm-tuner checkpoint's keys and their types; older ones get the newer keys."""
    if not isinstance(payload, dict) or any(key not in payload for key in REQUIRED):
        raise CheckpointError(
            f"{path}: not an lstm-tuner checkpoint (expected keys {', '.join(REQUIRED)})"
        )
    payload.setdefault("meta", {})
    payload.setdefault(MEMBERS, 0)
    payload.setdefault(MEMBER_HPARAMS, [])
    payload.setdefault(RULE, "")
    wrong = [key for key, kind in SHAPES.items() if not isinstance(payload[key], kind)]
    if wrong:
        raise CheckpointError(
            f"{path}: not an lstm-tuner checkpoint ({wrong[0]} is a "
            f"{type(payload[wrong[0]]).__name__}, expected a {SHAPES[wrong[0]].__name__})"
        )
    return payload


def restore_model(
    payload: dict[str, Any], task: Task, rebuilt_with: Mapping[str, Any] | None = None
) -> Any:
    """Rebuild the task's model from the checkpoint's hyperparameters (made current by the
    task's `upgrade` for checkpoints of an older version) and load its weights; a checkpoint
    of several models (`members`) comes back as one that combines them (the task's
    `combine`). `rebuilt_with` replaces hyperparameters the constructor takes (a fine-tune's
    new lr and dropout), so the model is built with them, not patched afterwards."""
    model_class = task.model_class
    arguments = _rebuilt(task.upgrade(dict(payload["hyper_parameters"])), rebuilt_with)
    members = int(payload.get(MEMBERS) or 0)
    if not 0 <= members <= MAX_MEMBERS:
        raise CheckpointError(f"checkpoint names {members} members; expected 0 to {MAX_MEMBERS}")
    own = payload.get(MEMBER_HPARAMS) or []  # fold models share the lead's
    if own and len(own) != members or payload.get(RULE, "") not in ("", *RULES):
        raise CheckpointError("checkpoint's members do not match its member list or rule")
    try:
        model = model_class(**arguments)
        if members:
            each = [_rebuilt(task.upgrade(dict(h)), rebuilt_with) for h in own]
            each = each or [arguments] * members
            others = [model_class(**member) for member in each]
            if task.reframe:  # an ensemble's members of another window read the lead's
                others = [task.reframe(arguments, other) for other in others]
            carry(model, others, task.combine, payload.get(RULE, ""))
        model.load_state_dict(payload["state_dict"])
    except (TypeError, RuntimeError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint does not fit {model_class.__name__}: {str(exc).splitlines()[0]}"
        ) from None
    return model.eval()


def _rebuilt(arguments: dict[str, Any], values: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**arguments, **{k: v for k, v in (values or {}).items() if k in arguments}}
