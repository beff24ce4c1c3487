"""A user's constructor as settings: each argument of `MyModel.__init__` (and of the data
module's) with a plain default is a setting a space or `--set` may name, typed by its
annotation or its default. Nothing here trains or builds a model."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from tuner.config.settings import Setting

PLAIN = (bool, int, float, str)
NOT_SETTINGS = {"self", "data"}  # `data` is the --data flag, not a setting


@dataclass(frozen=True)
class Argument:
    """One constructor argument: its setting, or why it cannot be one."""

    name: str
    setting: Setting | None
    required: bool  # no default: a space must give it


@cache
def arguments(target: Callable[..., Any], model: bool) -> tuple[Argument, ...]:
    """The named arguments of a class's `__init__` (or a function), in order; `*args` and
    `**kwargs` are skipped. Read once per class: every trial builds its model and data."""
    function = target.__init__ if isinstance(target, type) else target
    hints = _hints(function)
    found = []
    for name, parameter in inspect.signature(function).parameters.items():
        if name in NOT_SETTINGS or parameter.kind in (parameter.VAR_POSITIONAL,
                                                      parameter.VAR_KEYWORD):  # fmt: skip
            continue
        required = parameter.default is parameter.empty
        default = None if required else parameter.default
        kind = _plain_type(hints.get(name), default)
        setting = None
        if kind is not None:
            setting = Setting(name, default, kind=kind, optional=default is None or required,
                              model=model, help=f"{_owner(target)} argument")  # fmt: skip
        found.append(Argument(name, setting, required))
    return tuple(found)


def takes(target: Callable[..., Any], name: str) -> bool:
    function = target.__init__ if isinstance(target, type) else target
    return name in inspect.signature(function).parameters


def _owner(target: Callable[..., Any]) -> str:
    return f"{getattr(target, '__qualname__', str(target))}"


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function)
    except Exception:  # an annotation naming what its module does not import: untyped
        return {}


def _plain_type(hint: Any, default: Any) -> type | None:
    """bool, int, float or str from the annotation (`int | None` counts as int), else from
    the default; None when the argument is not a plain value (a list, a module...)."""
    if hint is not None:
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            plain = [h for h in typing.get_args(hint) if h is not type(None)]
            hint = plain[0] if len(plain) == 1 else None
        if hint in PLAIN:
            return float if hint is float else hint
        if hint is not None and default is None:
            return None
    if isinstance(default, PLAIN):
        return type(default)
    return None
