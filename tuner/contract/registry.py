"""Task lookup: the framework reaches a task only here, by name -> package path (the table
is `tuner.tasks.TASKS`, read by name), and imports it only when asked for.

Each registered task is a package with two entry modules: `<package>.spec` declares its
settings and metrics without importing torch (read-only commands and every check use it),
`<package>.task` exposes `TASK` (its data, model and predict). A task outside this repo is
named by its dotted module path (`--task mypkg.mytask`) or a `.py` file's path; that module
exposes `TASK`, a `tuner.contract.task.Task`, or `MODEL`, a LightningModule class, which
`tuner.custom` makes a task of (docs/custom.md). Only the user's own `--task` flag may name a
module: a name read from a file (a checkpoint) must be a registered task, so a file never
chooses which code runs; the one exception is MLflow's pyfunc loading a model folder, which
imports the code the user logged in that folder (`logged_task`). Adding a task is one folder
in tasks/ plus one line in tasks/__init__.py's TASKS.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from tuner.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from tuner.config.settings import TaskSpec
    from tuner.contract.task import Task

REGISTRY = "tuner.tasks"  # the package whose TASKS table names the registered tasks
CUSTOM = "tuner.custom"  # makes a task of a user's LightningModule (imported when asked)


def registered() -> dict[str, str]:
    """The registered tasks (name -> module path), read from the tasks package by name: the
    framework never imports a task statically, and adding a task does not touch tuner/."""
    return dict(importlib.import_module(REGISTRY).TASKS)


def get_task(name: str, allow_module: bool = True) -> Task:
    """The `TASK` of a registered name, or (with `allow_module`, for the user's own
    --task flag only) of a dotted module path."""
    package = registered().get(name)
    if package is None:
        _check_module_path(name, allow_module)
        if name.endswith(".py"):  # one file, whichever folder names it
            return _user_task(str(Path(name).expanduser().resolve()))
        return _user_task(name)
    task = getattr(_import(f"{package}.task", name), "TASK", None)
    from tuner.contract.task import Task

    if not isinstance(task, Task):
        raise UsageError(f"--task {name!r}: its package has no TASK of type Task")
    return task


@cache
def _user_task(name: str) -> Task:
    """A task outside this repo (its TASK, or its MODEL made a task by tuner.custom),
    found once per process: its module is imported once."""
    return importlib.import_module(CUSTOM).task_of(name)


def logged_task(name: str, code: Path) -> Task:
    """The task of a model MLflow's pyfunc loads: a registered one, or a user's model
    whose code was logged in the model folder (`code`, which MLflow put on sys.path); code
    from anywhere else is refused."""
    if name in registered():
        return get_task(name, allow_module=False)
    return importlib.import_module(CUSTOM).logged_task_of(name, code)


def get_spec(name: str) -> TaskSpec:
    """The settings declaration of a task: for a registered one without importing torch."""
    tasks = registered()
    if name in tasks:
        return _import(f"{tasks[name]}.spec", name).SPEC
    return get_task(name).spec


def _check_module_path(name: str, allow_module: bool) -> None:
    if allow_module and ("." in name or ":" in name):
        return
    if "." in name or ":" in name:
        raise UsageError(
            f"task {name!r} is not a registered task ({', '.join(registered())}); a module "
            f"path is only taken from your own --task flag: pass --task {name} if you trust it"
        )
    if Path(f"{name}.py").is_file():
        raise UsageError(f"--task {name!r}: unknown task; did you mean --task {name}.py?")
    raise UsageError(
        f"--task {name!r}: unknown task{did_you_mean(name, registered())}; "
        f"known tasks: {', '.join(registered())} (or your own model: a dotted module path "
        f"such as mypkg.mytask, or a .py file, defining MODEL; docs/custom.md)"
    )


def _import(module_path: str, name: str):  # noqa: ANN202 - a module
    try:
        return importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        raise UsageError(
            f"--task {name!r}: cannot import module {module_path!r} ({exc})"
        ) from None
