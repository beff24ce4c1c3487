"""A default search space for a user's model that ships none: the constructor arguments
whose names say what they are (a learning rate, a width, a depth, a dropout) searched around
their defaults, everything else fixed at its default. The study header names what was
searched and how to choose instead (a `SPACE` in the module, or `<module>.yaml` beside it)."""

from __future__ import annotations

import re
from typing import Any

from tuner.config.settings import MAXIMIZE, MINIMIZE, TaskSpec
from tuner.custom.loading import UserParts
from tuner.custom.signature import arguments

RISING = re.compile(r"acc|f1|auc|precision|recall|r2|map|ndcg|bleu|iou|dice", re.I)
RATE = re.compile(r"^(lr|learning_rate)$")
WIDTH = re.compile(r"hidden|nhid|ninp|units|embed|width|d_model", re.I)
DEPTH = re.compile(r"layers$", re.I)
DROPOUT = re.compile(r"dropout", re.I)


def direction_of(metric: str) -> str:
    """A metric's direction from its name: accuracy-like ones rise, the rest (losses,
    errors) fall; METRIC / DIRECTION in the module say otherwise."""
    return MAXIMIZE if RISING.search(metric) else MINIMIZE


def default_space(parts: UserParts, spec: TaskSpec) -> dict[str, Any]:
    """The space of a module that gives none, as a space file's mapping."""
    params = {}
    for argument in arguments(parts.model, model=True):
        setting = argument.setting
        if setting is None or argument.required or isinstance(setting.default, bool):
            continue
        param = _around(argument.name, setting.default)
        if param:
            params[argument.name] = param
    return {
        "metric": spec.metric,
        "direction": spec.direction,
        "params": params,
        "fixed": {"max_epochs": spec.defaults["max_epochs"]},
    }


def _around(name: str, default: Any) -> dict[str, Any] | None:
    """The range searched for one argument, from its name and default (None: fixed)."""
    if isinstance(default, float) and default > 0 and RATE.match(name):
        return {"type": "float", "low": default / 10, "high": default * 10, "log": True}
    if isinstance(default, float) and DROPOUT.search(name):
        return {"type": "float", "low": 0.0, "high": max(0.5, default)}
    if isinstance(default, int) and default >= 4 and WIDTH.search(name):
        return {"type": "int", "low": max(2, default // 4), "high": default, "log": True}
    if isinstance(default, int) and default >= 1 and DEPTH.search(name):
        return {"type": "int", "low": 1, "high": max(2, default)}
    return None
