"""The tasks shipped with lstm-tuner, one module each; the registry that names them is
tuner/registry.py (re-exported here for code written against `tasks.get_task`)."""

from tuner.registry import TASKS, get_spec, get_task

__all__ = ["TASKS", "get_spec", "get_task"]
