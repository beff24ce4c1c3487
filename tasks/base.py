"""For tasks written against `tasks.base` (now installed as `tuner.tasks.base`): the Task
contract and the pieces tasks share live in tuner/contract/ (task.py, tensors.py, lstm.py,
datafiles.py), so that tasks depend on the framework and never the other way round."""

from tuner.contract.datafiles import (
    SPLITS,
    read_csv,
    require_splits,
    split_column,
    worst_split_settings,
)
from tuner.contract.lstm import ErrorSums, LSTMBackbone, adam
from tuner.contract.task import Task
from tuner.contract.tensors import TensorBatches, TensorData

__all__ = [
    "SPLITS",
    "ErrorSums",
    "LSTMBackbone",
    "Task",
    "TensorBatches",
    "TensorData",
    "adam",
    "read_csv",
    "require_splits",
    "split_column",
    "worst_split_settings",
]
