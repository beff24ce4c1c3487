"""Your own LightningModule as a task (docs/custom.md): a module exposing `MODEL` (and
optionally `DATA`, `SPACE`, `METRIC`, `predict`, `EXAMPLE`) is found (`loading`), its
constructors read as settings (`signature`), a space derived where it ships none (`space`),
its data and model built per trial (`data`, `building`), checked before anything is created
(`checks`) and made a `Task` (`adapter`). The registry reaches this package by name, as it
reaches the shipped tasks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tuner.contract.task import Task
from tuner.custom.loading import import_file, import_user_module, is_custom_reference, load_parts
from tuner.errors import CheckpointError, UsageError


def task_of(reference: str) -> Task:
    """The task a user's --task names: its module's TASK, or its MODEL made a task."""
    from tuner.custom.adapter import custom_task

    if is_custom_reference(reference):
        return custom_task(load_parts(reference))
    module = import_user_module(reference)
    task = getattr(module, "TASK", None)
    if isinstance(task, Task):
        return task
    if task is not None:
        raise UsageError(f"--task {reference!r}: its TASK is not a tuner.contract.task.Task")
    return custom_task(load_parts(reference, module))


def logged_task_of(reference: str, code: Path) -> Task:
    """The task of a model whose code was logged beside it (`code`, the model folder's code
    directory): imported from there only, never from elsewhere on the path."""
    from tuner.custom.adapter import custom_task

    code = code.resolve()
    if reference.endswith(".py"):
        module = import_file(code / Path(reference).name)
        return custom_task(load_parts(reference, module))
    for part in reference.replace("+", " ").split():
        top = part.partition(":")[0].split(".")[0]
        spec = importlib.util.find_spec(top)
        origin = Path(spec.origin or "").resolve() if spec else None
        if origin is None or code not in origin.parents:
            raise CheckpointError(
                f"model of task {reference!r}: its code is not in the model's folder "
                f"({code}); a model's own code is the only code it may load"
            )
    return task_of(reference)
