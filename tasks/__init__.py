"""Task registry: name -> module path, imported only when asked for.

A task outside this repo is named by its dotted module path (`--task mypkg.mytask`);
the module must expose `TASK`, a `tasks.base.Task`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from tuner.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from tasks.base import Task

TASKS = {
    "forecasting": "tasks.forecasting",
    "classification": "tasks.classification",
    "charlm": "tasks.charlm",
    "speech": "tasks.speech",
}


def get_task(name: str) -> Task:
    """The `TASK` of a registered name or of a dotted module path."""
    module_path = TASKS.get(name) or (name if "." in name else None)
    if module_path is None:
        raise UsageError(
            f"--task {name!r}: unknown task{did_you_mean(name, TASKS)}; "
            f"known tasks: {', '.join(TASKS)} (or a dotted module path, "
            f"e.g. mypkg.mytask, whose module defines TASK)"
        )
    try:
        module = importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        raise UsageError(
            f"--task {name!r}: cannot import module {module_path!r} ({exc})"
        ) from None
    task = getattr(module, "TASK", None)
    from tasks.base import Task

    if not isinstance(task, Task):
        raise UsageError(
            f"--task {name!r}: module {module_path!r} has no TASK of type tasks.base.Task"
        )
    return task
