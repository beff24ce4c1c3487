"""Search-space YAML -> a checked SearchSpace: every problem in a file is gathered
before raising, each as `file: key: reason` (with "did you mean" for a misspelt key)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuner.config.files import load_yaml
from tuner.config.goals import parse_goals, with_first_objective
from tuner.config.settings import MINIMIZE, Setting, TaskSpec
from tuner.config.space import (
    DIRECTIONS,
    PARAM_KEYS,
    PROFILES,
    TIE_BREAK,
    TOP_KEYS,
    ParamSpec,
    Profile,
    SearchSpace,
)
from tuner.errors import SpaceError, did_you_mean


def load_space(path: str | Path, spec: TaskSpec | Mapping[str, Any]) -> SearchSpace:
    """Read and validate a space file against a task's declaration (or, for older
    callers, its defaults: name -> default value).

    Raises:
        SpaceError: listing every problem found, each as `file: key: reason`.
    """
    expected = "a YAML mapping with metric, direction, params, fixed"
    raw = load_yaml(path, "search-space file", expected, SpaceError)
    return parse_space(raw, spec, source=str(path))


def as_spec(spec: TaskSpec | Mapping[str, Any]) -> TaskSpec:
    if isinstance(spec, TaskSpec):
        return spec
    return TaskSpec.from_defaults("task", "", MINIMIZE, spec)


def parse_space(raw: Any, spec: TaskSpec | Mapping[str, Any], source: str) -> SearchSpace:
    """Validate an already-parsed mapping; see `load_space`."""
    spec = as_spec(spec)
    problems: list[str] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpaceError(
            f"{source}: expected a YAML mapping with keys {', '.join(TOP_KEYS)}, "
            f"found {type(raw).__name__}"
        )
    for key in raw:
        if key not in TOP_KEYS:
            problems.append(
                f"{key}: unknown key{did_you_mean(str(key), TOP_KEYS)}; "
                f"expected one of {', '.join(TOP_KEYS)}"
            )
    metric, direction = _parse_objective(with_first_objective(raw), spec, problems)
    params = _parse_params(raw.get("params") or {}, spec, problems)
    fixed = _parse_fixed(raw.get("fixed") or {}, spec, problems)
    first = _parse_first(raw.get("first") or {}, params, problems)
    tie_break = _parse_tie_break(raw, spec, problems)
    profiles = {
        key: _parse_profile(raw[key], key, spec, problems) for key in PROFILES if key in raw
    }
    objectives, constraints = parse_goals(raw, metric, direction, problems)
    if problems:
        raise SpaceError("; ".join(f"{source}: {problem}" for problem in problems))
    return SearchSpace(metric, direction, tuple(params), fixed, source, tie_break, profiles,
                       objectives=objectives, constraints=constraints, first=first)  # fmt: skip


def _parse_profile(raw: Any, key: str, spec: TaskSpec, problems: list[str]) -> Profile:
    """A device section holds params and fixed only, checked like the top level's."""
    if not isinstance(raw, dict):
        problems.append(f"{key}: expected a mapping with params and/or fixed, found {raw!r}")
        return Profile()
    found: list[str] = []
    for name in raw:
        if name not in ("params", "fixed"):
            found.append(f"{name}: unknown key{did_you_mean(str(name), ('params', 'fixed'))}")
    params = _parse_params(raw.get("params") or {}, spec, found)
    fixed = _parse_fixed(raw.get("fixed") or {}, spec, found)
    problems.extend(f"{key}.{problem}" for problem in found)
    return Profile(tuple(params), fixed)


def _parse_first(raw: Any, params: list[ParamSpec], problems: list[str]) -> dict[str, Any]:
    """A new study's first trial: values of searched params (the sampler draws the others).
    Why: no pruner stops a first trial, and a random first draw of a wide space can keep a
    CPU user waiting many minutes for the first result; a space can start small."""
    if not isinstance(raw, dict):
        problems.append(f"first: expected a mapping of searched param -> value, found {raw!r}")
        return {}
    searched = {spec.name: spec for spec in params}
    first = {}
    for name, value in raw.items():
        spec = searched.get(str(name))
        if spec is None:
            names = ", ".join(searched) or "none"
            problems.append(f"first.{name}: not a searched param; expected one of {names}")
        elif not spec.holds(value):
            problems.append(f"first.{name}: found {value!r}; expected {spec.values()}")
        else:
            first[str(name)] = value
    return first


def _parse_tie_break(raw: dict, spec: TaskSpec, problems: list[str]) -> str:
    """The metric that decides between trials (and epochs) of equal value: one the task
    logs with a known direction, or none."""
    name = raw.get("tie_break", TIE_BREAK)
    if name == "none" or (isinstance(name, str) and spec.direction_of(name)):
        return name
    if "tie_break" in raw:
        known = ", ".join(spec.metrics or ()) or "the task's metrics"
        problems.append(f"tie_break: expected one of {known} or none, found {name!r}")
    return "none"


def _parse_objective(raw: dict, spec: TaskSpec, problems: list[str]) -> tuple[str, str]:
    """The metric (default: the task's) must be one the task logs each epoch; the direction
    (default: the way that metric improves) must not contradict the task's."""
    metric = raw.get("metric", spec.metric)
    if not isinstance(metric, str) or not metric:
        problems.append(f"metric: expected a metric name such as val_loss, found {metric!r}")
        return "", MINIMIZE
    if spec.metrics is not None and metric not in spec.metrics:
        problems.append(
            f"metric: task {spec.name!r} does not log {metric!r}"
            f"{did_you_mean(metric, spec.metrics)}; expected one of {', '.join(spec.metrics)}"
        )
    known = spec.direction_of(metric)
    direction = raw.get("direction", known)
    if direction not in DIRECTIONS:
        found = "nothing" if direction is None else repr(direction)
        problems.append(f"direction: expected minimize or maximize, found {found}")
    elif known and direction != known:
        problems.append(f"direction: {metric} is a metric to {known}, found {direction}")
    return metric, direction or MINIMIZE


def _parse_params(raw: Any, spec: TaskSpec, problems: list[str]) -> list[ParamSpec]:
    if not isinstance(raw, dict):
        problems.append(f"params: expected a mapping of name -> spec, found {type(raw).__name__}")
        return []
    specs = []
    for name, entry in raw.items():
        where = f"params.{name}"
        setting = spec.table.get(str(name))
        if setting is None:
            problems.append(f"params.{spec.check(str(name), None)}")
            continue
        param = _parse_param(str(name), entry, where, problems)
        if param is not None and _fits_setting(param, setting, where, problems):
            specs.append(param)
    return specs


def _fits_setting(param: ParamSpec, setting: Setting, where: str, problems: list[str]) -> bool:
    """Every value the param can take is a valid value of the setting it searches."""
    before = len(problems)
    if param.kind == "categorical":
        values = list(param.choices)
    elif setting.type not in (int, float) or (param.kind == "float" and setting.type is int):
        kind = "int" if setting.type is int else "categorical"
        problems.append(f"{where}.type: {param.name} takes {setting.expected()}; use type {kind}")
        return False
    else:
        values = [param.low, param.high]
    for value in values:
        problem = setting.problem(value)
        if problem:
            problems.append(f"{where}: {problem}, found {value!r}")
            break
    return len(problems) == before


def _parse_param(name: str, entry: Any, where: str, problems: list[str]) -> ParamSpec | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected a mapping with 'type', found {entry!r}")
        return None
    kind = entry.get("type")
    if kind not in PARAM_KEYS:
        problems.append(
            f"{where}.type: unknown type {kind!r}{did_you_mean(str(kind), PARAM_KEYS)}; "
            f"expected int, float or categorical"
        )
        return None
    before = len(problems)
    for key in entry:
        if key not in PARAM_KEYS[kind]:
            problems.append(
                f"{where}: unknown key {key!r} for a {kind} param"
                f"{did_you_mean(str(key), PARAM_KEYS[kind])}"
            )
    if kind == "categorical":
        choices = entry.get("choices")
        if not isinstance(choices, list) or not choices:
            problems.append(f"{where}.choices: expected a non-empty list, found {choices!r}")
        return None if len(problems) > before else ParamSpec(name, kind, choices=tuple(choices))
    return _parse_range(name, kind, entry, where, problems, before)


def _parse_range(
    name: str, kind: str, entry: dict, where: str, problems: list[str], before: int
) -> ParamSpec | None:
    numbers = (int,) if kind == "int" else (int, float)
    low, high, step = entry.get("low"), entry.get("high"), entry.get("step")
    log = entry.get("log", False)
    for key, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, numbers):
            problems.append(
                f"{where}.{key}: expected {'an integer' if kind == 'int' else 'a number'}, "
                f"found {value!r}"
            )
    if not isinstance(log, bool):
        problems.append(f"{where}.log: expected true or false, found {log!r}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, numbers) or step <= 0):
        problems.append(f"{where}.step: expected a positive number, found {step!r}")
    if len(problems) > before:
        return None
    if low > high:
        problems.append(f"{where}: low ({low}) must not be greater than high ({high})")
    elif log and low <= 0:
        problems.append(f"{where}: a log range needs low > 0, found low={low}")
    elif log and step is not None:
        problems.append(f"{where}: log and step cannot be combined (Optuna does not allow it)")
    if len(problems) > before:
        return None
    return ParamSpec(name, kind, low=low, high=high, log=log, step=step)


def _parse_fixed(raw: Any, spec: TaskSpec, problems: list[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        problems.append(
            f"fixed: expected a mapping of setting -> value, found {type(raw).__name__}"
        )
        return {}
    fixed = {}
    for name, value in raw.items():
        problem = spec.check(str(name), value)
        if problem:
            problems.append(f"fixed.{problem}")
        else:
            fixed[str(name)] = spec.table[str(name)].coerce(value)
    return fixed
