"""One declaration per setting and per flag: name, default, type, range, choices, help.

Search spaces, `--set`, every command-line flag and the Python API's keyword arguments are
checked against these declarations before anything is created, so a new setting cannot
skip its checks. Nothing here imports torch: read-only commands rely on it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from tuner.errors import UsageError, did_you_mean

MINIMIZE, MAXIMIZE = "minimize", "maximize"
TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "text"}


@dataclass(frozen=True)
class Setting:
    """A setting a space or `--set` may name, or a flag a command takes.

    `low` / `high` bound numbers (inclusive; `above=True` makes `low` exclusive), `choices`
    lists the words a text setting takes, `optional` allows None (no value), `model` marks
    an argument of the task's model constructor."""

    name: str
    default: Any
    help: str = ""
    kind: type | None = None  # int, float, str or bool; None: the default's type
    low: float | None = None
    high: float | None = None
    above: bool = False
    choices: tuple[Any, ...] = ()
    optional: bool = False
    model: bool = False

    @property
    def type(self) -> type:
        return self.kind or type(self.default)

    def expected(self) -> str:
        """What a valid value looks like, in words: 'an integer >= 1', 'one of a, b'."""
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        words = TYPE_WORDS.get(self.type, self.type.__name__)
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.above else '>='} {_number(self.low)}")
        if self.high is not None:
            bounds.append(f"<= {_number(self.high)}")
        return " ".join([words, " and ".join(bounds)]).strip()

    def problem(self, value: Any) -> str | None:
        """None when `value` is valid, else what was expected (`expected an integer >= 1`)."""
        if value is None:
            return None if self.optional or self.default is None else self._wrong(value)
        kind = self.type
        numbers = (int, float) if kind is float else (kind,)
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, numbers):
            return self._wrong(value)
        if self.choices and value not in self.choices:
            return self._wrong(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return self._range_problem(value)
        return None

    def _range_problem(self, value: float) -> str | None:
        if not math.isfinite(value):
            return self._wrong(value)
        if self.low is not None and (value <= self.low if self.above else value < self.low):
            return self._wrong(value)
        if self.high is not None and value > self.high:
            return self._wrong(value)
        return None

    def _wrong(self, value: Any) -> str:
        return f"expected {self.expected()}"

    def coerce(self, value: Any) -> Any:
        """A number written as text ('1e-3': YAML 1.1 reads it as a string) as a number."""
        if isinstance(value, str) and self.type in (int, float):
            try:
                number = float(value) if self.type is float else int(value)
            except ValueError:
                return value
            return number
        return value

    def parse(self, text: str) -> Any:
        """A command-line value, checked; raises UsageError naming the flag."""
        value = read_scalar(text) if self.type is not str else text
        value = self.coerce(value)
        problem = self.problem(value)
        if problem:
            raise UsageError(f"--{self.name.replace('_', '-')} {value!r}: {problem}")
        return value


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def read_scalar(text: str) -> Any:
    """A YAML scalar: 3, 0.1, true, text (not lists or mappings: a setting is one value)."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, RecursionError):  # 5000 digits, [[[[...
        return text
    return value if isinstance(value, (bool, int, float, str)) or value is None else text


FRAMEWORK_SETTINGS: tuple[Setting, ...] = (
    Setting("max_epochs", 50, "epochs a trial trains at most", low=1, high=100_000),
    Setting("patience", 0, "early stopping after this many epochs without gain (0 = off)", low=0),
    Setting("grad_clip", 1.0, "gradient norm clipping (0 = off)", low=0),
    Setting(
        "checkpoint_every",
        0,
        "save a resume checkpoint every N epochs (0 = at most one a minute)",
        low=0,
    ),
    Setting(
        "keep_top",
        5,
        "trials whose weights are kept (those ranking in the top N when they end): the "
        "members `tuner ensemble` can take",
        low=0,
    ),
    Setting(
        "train_seed",
        None,
        "seed of the initial weights, dropout and batch order (default: --seed); the data's "
        "splits always follow --seed",
        kind=int,
        optional=True,
        low=0,
        high=2**32 - 1,
    ),
)


def lstm_settings(
    hidden_size: int, num_layers: int, dropout: float, lr: float
) -> tuple[Setting, ...]:
    """The settings of every task's LSTM and optimiser, with the task's defaults."""
    return (
        Setting("hidden_size", hidden_size, "LSTM units per layer (and direction)", low=1,
                model=True),
        Setting("num_layers", num_layers, "stacked LSTM layers", low=1, model=True),
        Setting("dropout", dropout, "dropout between layers and before the head", low=0,
                high=1, model=True),
        Setting("lr", lr, "Adam (peak) learning rate", low=0, above=True, model=True),
        Setting("weight_decay", 0.0, "Adam weight decay", low=0, model=True),
    )  # fmt: skip


@dataclass(frozen=True)
class TaskSpec:
    """What a task declares without importing torch: its name, the metric it optimises by
    default, every metric it logs (with its direction), its settings and its predict
    options. The framework's own settings (max_epochs, patience, grad_clip) are added,
    with the task's defaults for them from `framework`."""

    name: str
    metric: str
    direction: str
    settings: tuple[Setting, ...]
    metrics: Mapping[str, str] | None = None  # None: not declared, any metric is accepted
    framework: Mapping[str, Any] = field(default_factory=dict)
    predict_options: tuple[Setting, ...] = ()

    @cached_property
    def table(self) -> dict[str, Setting]:
        table = {
            s.name: dataclasses.replace(s, default=self.framework.get(s.name, s.default))
            for s in FRAMEWORK_SETTINGS
        }
        table.update({s.name: s for s in self.settings})
        return table

    @property
    def defaults(self) -> dict[str, Any]:
        return {name: setting.default for name, setting in self.table.items()}

    @property
    def choices(self) -> dict[str, tuple[Any, ...]]:
        return {name: s.choices for name, s in self.table.items() if s.choices}

    def model_args(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The model constructor's arguments, taken from a trial's settings."""
        return {name: settings[name] for name, s in self.table.items() if s.model}

    def check(self, name: str, value: Any) -> str | None:
        """None when `name = value` is a valid setting of this task, else `name: reason`."""
        setting = self.table.get(name)
        if setting is None:
            return (
                f"{name}: unknown setting{did_you_mean(name, self.table)}; "
                f"this task knows {', '.join(sorted(self.table))}"
            )
        problem = setting.problem(setting.coerce(value))
        return f"{name}: {problem}, found {value!r}" if problem else None

    def direction_of(self, metric: str) -> str | None:
        """The direction a logged metric improves in; None when the task does not say."""
        if metric == self.metric:
            return self.direction
        return (self.metrics or {}).get(metric)

    @classmethod
    def from_defaults(
        cls,
        name: str,
        metric: str,
        direction: str,
        defaults: Mapping[str, Any],
        choices: Mapping[str, tuple[Any, ...]] | None = None,
    ) -> TaskSpec:
        """For tasks written before settings were declared: each default's type is the
        setting's type, its choices the words it takes; no ranges, metrics not checked."""
        choices = choices or {}
        framework = {setting.name for setting in FRAMEWORK_SETTINGS}
        settings = tuple(
            Setting(key, value, choices=tuple(choices.get(key, ())), optional=value is None)
            for key, value in defaults.items()
            if key not in framework
        )
        own = {key: value for key, value in defaults.items() if key in framework}
        return cls(name, metric, direction, settings, framework=own)


def check_values(values: Mapping[str, Any], table: Iterable[Setting], prefix: str = "--") -> None:
    """Every value whose name is declared in `table` is valid, else one UsageError that
    names the flag (the Python API's keyword arguments are checked by their flag names)."""
    for setting in table:
        if setting.name in values:
            value = values[setting.name]
            problem = setting.problem(
                os.fspath(value) if isinstance(value, os.PathLike) else value
            )
            if problem:
                flag = prefix + setting.name.replace("_", "-")
                raise UsageError(f"{flag} {value!r}: {problem}")
