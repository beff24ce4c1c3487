"""Task lookup: the framework reaches a task only here, by name -> package path (the table
is `tuner.tasks.TASKS`, read by name), and imports it only when asked for.

Each registered task is a package with two entry modules: `<package>.spec` declares its
settings and metrics without importing torch (read-only commands and every check use it),
`<package>.task` exposes `TASK` (its data, model and predict). A task outside this repo is
named by its dotted module path (`--task mypkg.mytask`); that module exposes `TASK`, a
`tuner.contract.task.Task`. Only the user's own `--task` flag may name a module: a name read
from a file (a checkpoint) must be a registered task, so a file never chooses which code
runs. Adding a task is one folder in tasks/ plus one line in tasks/__init__.py's TASKS.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from tuner.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from tuner.config.settings import TaskSpec
    from tuner.contract.task import Task

REGISTRY = "tuner.tasks"  # the package whose TASKS table names the registered tasks


def registered() -> dict[str, str]:
    """The registered tasks (name -> module path), read from the tasks package by name: the
    framework never imports a task statically, and adding a task does not touch tuner/."""
    return dict(importlib.import_module(REGISTRY).TASKS)


def get_task(name: str, allow_module: bool = True) -> Task:
    """The `TASK` of a registered name, or (with `allow_module`, for the user's own
    --task flag only) of a dotted module path."""
    package = registered().get(name)
    module = _import(f"{package}.task" if package else _module_path(name, allow_module), name)
    task = getattr(module, "TASK", None)
    from tuner.contract.task import Task

    if not isinstance(task, Task):
        raise UsageError(
            f"--task {name!r}: module {module.__name__!r} has no TASK of type "
            f"tuner.contract.task.Task"
        )
    return task


def get_spec(name: str) -> TaskSpec:
    """The settings declaration of a task: for a registered one without importing torch."""
    tasks = registered()
    if name in tasks:
        return _import(f"{tasks[name]}.spec", name).SPEC
    return get_task(name).spec


def _module_path(name: str, allow_module: bool) -> str:
    if allow_module and "." in name:
        return name
    if "." in name:
        raise UsageError(
            f"task {name!r} is not a registered task ({', '.join(registered())}); a module "
            f"path is only taken from your own --task flag: pass --task {name} if you trust it"
        )
    raise UsageError(
        f"--task {name!r}: unknown task{did_you_mean(name, registered())}; "
        f"known tasks: {', '.join(registered())} (or a dotted module path, "
        f"e.g. mypkg.mytask, whose module defines TASK)"
    )


def _import(module_path: str, name: str):  # noqa: ANN202 - a module
    try:
        return importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        raise UsageError(
            f"--task {name!r}: cannot import module {module_path!r} ({exc})"
        ) from None
