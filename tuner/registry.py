"""Task registry: the framework reaches a task only here, by name -> module path, and
imports it only when asked for.

Each registered task has two modules: `tasks.<name>_spec` declares its settings and metrics
without importing torch (read-only commands and every check use it), `tasks.<name>` holds
its data, model and predict. A task outside this repo is named by its dotted module path
(`--task mypkg.mytask`); that module exposes `TASK`, a `tuner.task.Task`. Only the user's
own `--task` flag may name a module: a name read from a file (a checkpoint) must be a
registered task, so a file never chooses which code runs. Adding a task is one module (and
its spec) in tasks/ plus one line in TASKS.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from tuner.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from tuner.settings import TaskSpec
    from tuner.task import Task

TASKS = {
    "forecasting": "tasks.forecasting",
    "classification": "tasks.classification",
    "charlm": "tasks.charlm",
    "speech": "tasks.speech",
}


def get_task(name: str, allow_module: bool = True) -> Task:
    """The `TASK` of a registered name, or (with `allow_module`, for the user's own
    --task flag only) of a dotted module path."""
    module = _import(TASKS.get(name) or _module_path(name, allow_module), name)
    task = getattr(module, "TASK", None)
    from tuner.task import Task

    if not isinstance(task, Task):
        raise UsageError(
            f"--task {name!r}: module {module.__name__!r} has no TASK of type tuner.task.Task"
        )
    return task


def get_spec(name: str) -> TaskSpec:
    """The settings declaration of a task: for a registered one without importing torch."""
    if name in TASKS:
        return _import(f"{TASKS[name]}_spec", name).SPEC
    return get_task(name).spec


def _module_path(name: str, allow_module: bool) -> str:
    if allow_module and "." in name:
        return name
    if "." in name:
        raise UsageError(
            f"task {name!r} is not a registered task ({', '.join(TASKS)}); a module path is "
            f"only taken from your own --task flag: pass --task {name} if you trust it"
        )
    raise UsageError(
        f"--task {name!r}: unknown task{did_you_mean(name, TASKS)}; "
        f"known tasks: {', '.join(TASKS)} (or a dotted module path, "
        f"e.g. mypkg.mytask, whose module defines TASK)"
    )


def _import(module_path: str, name: str):  # noqa: ANN202 - a module
    try:
        return importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        raise UsageError(
            f"--task {name!r}: cannot import module {module_path!r} ({exc})"
        ) from None
