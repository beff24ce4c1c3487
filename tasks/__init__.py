"""The tasks shipped with lstm-tuner, installed as `tuner.tasks`: one folder each
(`spec.py` declares its settings without torch; `task.py` exposes `TASK`; `data.py` reads
its input; `model.py` holds its LightningModule). TASKS is the registry the framework reads
by name (tuner/contract/registry.py): adding a task is one folder and one line here."""

from tuner.contract.registry import get_spec, get_task

TASKS = {
    "forecasting": "tuner.tasks.forecasting",
    "classification": "tuner.tasks.classification",
    "charlm": "tuner.tasks.charlm",
    "speech": "tuner.tasks.speech",
}

__all__ = ["TASKS", "get_spec", "get_task"]
