"""The tasks shipped with lstm-tuner, one module each (plus a `<name>_spec` module that
declares its settings without importing torch). TASKS is the registry the framework reads by
name (tuner/registry.py): adding a task is one line here."""

from tuner.registry import get_spec, get_task

TASKS = {
    "forecasting": "tasks.forecasting",
    "classification": "tasks.classification",
    "charlm": "tasks.charlm",
    "speech": "tasks.speech",
}

__all__ = ["TASKS", "get_spec", "get_task"]
