"""lstm-tuner: tune and fine-tune LSTM models with Optuna, Lightning and MLflow.

import tuner
result = tuner.search("forecasting", trials=10)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = [
    "search",
    "best",
    "trials",
    "ensemble",
    "finetune",
    "predict",
    "export",
    "lineage",
    "report",
    "compare",
    "check",
]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})  # the API's functions too, before they are loaded


def __getattr__(name: str) -> Any:
    # The API pulls in torch, Lightning and MLflow: import it only when it is used. (No
    # module of this package is named like these functions, or importing it would hide
    # them: tests/test_layout.py checks.)
    if name in __all__:
        from tuner import api

        return getattr(api, name)
    raise AttributeError(f"module 'tuner' has no attribute {name!r}")
