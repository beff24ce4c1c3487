"""A checked search space (SearchSpace, ParamSpec) -> trial.suggest_*; space_file.py
reads and checks one from YAML.

The YAML keys copy Optuna's own vocabulary (low, high, log, step, choices), so a
param's name is the same in the file, in `trial.params`, in MLflow and in the
model's hyperparameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna

from tuner.config.goals import Constraint, Objective
from tuner.config.settings import MINIMIZE, TaskSpec

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
        return "latency_ms" in self.named_costs

    @property
    def named_costs(self) -> list[str]:
        return [*(o.metric for o in self.objectives), *(c.metric for c in self.constraints)]

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

    def replace_first(self, first: Mapping[str, Any]) -> SearchSpace:
        return dataclasses.replace(self, first=dict(first))

    def names(self, name: str) -> bool:
        """Whether the space searches or fixes `name` (its file or a --set chose it)."""
        return name in self.fixed or self.param(name) is not None

    def from_data(
        self, name: str, value: Any, why: str, first: Any = None, before: str = ""
    ) -> tuple[SearchSpace, list[str]]:
        """`name` shaped by the data when the space leaves it out: `value` is a fixed value
        or a ParamSpec to search (`first`: its value in a space's named first trial;
        `before`: the searched param it is drawn before, so that a seeded sampler draws the
        others as it did when the file named it there). What the space names wins; the
        note says what the data chose, for the study header (or, for a fixed value the
        space names otherwise, what the data would have chosen)."""
        if self.names(name):
            named = self.fixed.get(name)
            if isinstance(value, ParamSpec) or name not in self.fixed or named == value:
                return self, []
            return self, [f"{name} {named}, as the space or --set names it (from the data: "
                          f"{value}, {why})"]  # fmt: skip
        if isinstance(value, ParamSpec):
            names = [spec.name for spec in self.params]
            at = names.index(before) if before in names else len(names)
            named = {name: first} if self.first and first is not None else {}
            params = (*self.params[:at], value, *self.params[at:])
            space = dataclasses.replace(self, params=params, first={**self.first, **named})
            shown = value.values()
        else:
            space, shown = self.with_fixed({name: value}), str(value)
        return space, [f"from the data: {name} {shown} ({why}); --set {name}=... chooses"]

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
