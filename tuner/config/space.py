"""Search-space YAML -> validated SearchSpace -> trial.suggest_*.

The YAML keys copy Optuna's own vocabulary (low, high, log, step, choices), so a
param's name is the same in the file, in `trial.params`, in MLflow and in the
model's hyperparameters. Every problem in a file is gathered before raising.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from tuner.config.goals import Constraint, Objective, parse_goals, with_first_objective
from tuner.config.settings import MINIMIZE, Setting, TaskSpec
from tuner.errors import SpaceError, did_you_mean

PROFILES = ("cpu", "gpu")  # sections that size a space for the device its trials run on
TOP_KEYS = (
    "metric", "direction", "params", "fixed", "first", "tie_break", "objectives", "constraints",
    *PROFILES,
)  # fmt: skip
TIE_BREAK = "val_loss"  # the default secondary metric: every task logs it
PARAM_KEYS = {
    "int": ("type", "low", "high", "log", "step"),
    "float": ("type", "low", "high", "log", "step"),
    "categorical": ("type", "choices"),
}
DIRECTIONS = (MINIMIZE, "maximize")


@dataclass(frozen=True)
class ParamSpec:
    """One searched hyperparameter, in Optuna's terms."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            step = int(self.step or 1)
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=step, log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def distribution(self) -> optuna.distributions.BaseDistribution:
        """The Optuna distribution `suggest` samples from."""
        if self.kind == "categorical":
            return optuna.distributions.CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            step = int(self.step or 1)
            return optuna.distributions.IntDistribution(
                int(self.low), int(self.high), log=self.log, step=step
            )
        return optuna.distributions.FloatDistribution(
            self.low, self.high, log=self.log, step=self.step
        )

    def holds(self, value: Any) -> bool:
        """Whether `suggest` could return `value`."""
        if self.kind == "categorical":
            return any(type(value) is type(c) and value == c for c in self.choices)
        numbers = (int,) if self.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, numbers):
            return False
        steps = (value - self.low) / self.step if self.step else 0.0
        return self.low <= value <= self.high and abs(steps - round(steps)) < 1e-9

    def values(self) -> str:
        """What `suggest` can return, in words, for an error message."""
        if self.kind == "categorical":
            return "one of " + ", ".join(map(str, self.choices))
        kind = "an integer" if self.kind == "int" else "a number"
        step = f" in steps of {self.step:g}" if self.step else ""
        return f"{kind} from {self.low:g} to {self.high:g}{step}"


@dataclass(frozen=True)
class Profile:
    """A `cpu:` or `gpu:` section: params and fixed settings for trials on that device."""

    params: tuple[ParamSpec, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchSpace:
    """What a study searches (params), what it holds fixed, and what it optimises."""

    metric: str
    direction: str
    params: tuple[ParamSpec, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<space>"
    tie_break: str = TIE_BREAK  # decides between equal values; "none": the earlier trial
    profiles: Mapping[str, Profile] = field(default_factory=dict)  # by accelerator
    profile: str = ""  # the section applied by `for_accelerator`, if any
    objectives: tuple[Objective, ...] = ()  # two or more: a multi-objective study
    constraints: tuple[Constraint, ...] = ()  # on the model's costs (tuner.config.goals)
    first: Mapping[str, Any] = field(default_factory=dict)  # a new study's first trial

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives] or [self.direction]

    @property
    def measures_latency(self) -> bool:
        named = [*(o.metric for o in self.objectives), *(c.metric for c in self.constraints)]
        return "latency_ms" in named

    def with_constraints(self, constraints: tuple[Constraint, ...]) -> SearchSpace:
        """The file's constraints and these (`--constraint`), each once."""
        kept = {str(c): c for c in (*self.constraints, *constraints)}
        return dataclasses.replace(self, constraints=tuple(kept.values()))

    def tie_breaker(self, spec: TaskSpec) -> tuple[str, float] | None:
        """(secondary metric, +1 to minimise it or -1 to maximise it), or None."""
        direction = spec.direction_of(self.tie_break)
        if self.tie_break in ("none", self.metric) or direction is None:
            return None
        return self.tie_break, (1.0 if direction == MINIMIZE else -1.0)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's params, suggested in file order."""
        return {spec.name: spec.suggest(trial) for spec in self.params}

    def param(self, name: str) -> ParamSpec | None:
        return next((spec for spec in self.params if spec.name == name), None)

    def value_range(self, name: str, defaults: Mapping[str, Any]) -> tuple[Any, Any]:
        """The smallest and largest value a trial can give `name` (searched, fixed or the
        task's default): what a data check must hold for, for every trial."""
        spec = self.param(name)
        if spec is None:
            value = self.fixed.get(name, defaults.get(name))
            return value, value
        if spec.kind == "categorical":
            return min(spec.choices), max(spec.choices)
        return spec.low, spec.high

    def with_fixed(self, overrides: Mapping[str, Any]) -> SearchSpace:
        """Pin settings: a searched param named here stops being searched."""
        params = tuple(spec for spec in self.params if spec.name not in overrides)
        first = {k: v for k, v in self.first.items() if k not in overrides}
        return dataclasses.replace(
            self, params=params, fixed={**self.fixed, **overrides}, first=first
        )

    def for_accelerator(self, accelerator: str) -> SearchSpace:
        """The space sized for the device its trials run on: its `cpu:` or `gpu:` section
        replaces the params and fixed settings it names (a CPU trial of a GPU-sized space
        can take ten times as long)."""
        profile = self.profiles.get(accelerator)
        if profile is None:
            return dataclasses.replace(self, profiles={})
        searched = {spec.name: spec for spec in (*self.params, *profile.params)}
        fixed = {k: v for k, v in self.fixed.items() if k not in searched}
        first = {k: v for k, v in self.first.items() if k in searched and searched[k].holds(v)}
        space = dataclasses.replace(
            self,
            params=tuple(searched.values()),
            fixed=fixed,
            profiles={},
            profile=accelerator,
            first=first,
        )
        return space.with_fixed(profile.fixed)

    def with_param(self, spec: ParamSpec) -> SearchSpace:
        params = tuple(spec if old.name == spec.name else old for old in self.params)
        return dataclasses.replace(self, params=params)

    def to_dict(self) -> dict[str, Any]:
        """The YAML form, for the record (MLflow artifact, study attrs)."""
        params = {}
        for spec in self.params:
            entry: dict[str, Any] = {"type": spec.kind}
            if spec.kind == "categorical":
                entry["choices"] = list(spec.choices)
            else:
                entry.update(low=spec.low, high=spec.high, log=spec.log)
                if spec.step is not None:
                    entry["step"] = spec.step
            params[spec.name] = entry
        return {
            "metric": self.metric,
            "direction": self.direction,
            "params": params,
            "fixed": dict(self.fixed),
            **({"first": dict(self.first)} if self.first else {}),
            **({"tie_break": self.tie_break} if self.tie_break != TIE_BREAK else {}),
            **({"objectives": [vars(o) for o in self.objectives]} if self.objectives else {}),
            **({"constraints": [str(c) for c in self.constraints]} if self.constraints else {}),
        }


def load_space(path: str | Path, spec: TaskSpec | Mapping[str, Any]) -> SearchSpace:
    """Read and validate a space file against a task's declaration (or, for older
    callers, its defaults: name -> default value).

    Raises:
        SpaceError: listing every problem found, each as `file: key: reason`.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpaceError(f"{path}: search-space file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpaceError(f"{path}: cannot read search-space file ({exc})") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise SpaceError(
            f"{path}: not valid YAML{line}; expected a mapping with "
            f"metric, direction, params, fixed"
        ) from None
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
