"""What a study optimises beyond one metric: the costs of a model (parameter count, size,
latency), constraints on them, and extra objectives.

Two modes, because Optuna cannot prune a multi-objective study (`Trial.report` raises there):
- constrained (`--constraint "latency_ms<=5"`, or `constraints:` in the space): one
  objective, pruning as usual; a trial whose model breaks a constraint is stopped before it
  trains (its costs are known from its architecture), and the samplers that read Optuna's
  constraints (TPE, GP) learn where the feasible region is;
- multi-objective (`objectives:` in the space, two or more): Optuna keeps the Pareto front,
  no pruning. The study's best (the registry's `best` alias, `tuner best`, fine-tune
  sources) is the best first objective among the feasible trials.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from tuner.config import trial_attrs
from tuner.errors import UsageError

# every task's model has these; all three are to minimise
COSTS = {
    "params": "parameter count of the model (every member of a K-fold trial's ensemble)",
    "size_mb": "its weights in MiB",
    "latency_ms": "inference time of one validation batch on the trial's device, ms",
}
# the same, of the model as `tuner export` writes it (docs/export.md): its fresh model
# exported before it trains, timed on ONNX Runtime, one thread, CPU
DEPLOYED_FORMS = ("onnx", "int8")
for _form in DEPLOYED_FORMS:
    COSTS[f"latency_ms_{_form}"] = (
        f"inference time of one validation batch as {_form} ONNX graphs (1 thread, CPU), ms"
    )
    COSTS[f"size_mb_{_form}"] = f"its {_form} ONNX graphs on disk in MiB"


def deployed_forms(metrics: Sequence[str]) -> list[str]:
    """The exported forms whose costs `metrics` name (`latency_ms_int8` -> int8)."""
    return [f for f in DEPLOYED_FORMS if any(m.endswith(f"_{f}") for m in metrics)]


# Optuna 5 takes constraints from the trial (`Trial.set_constraint`) and deprecates the
# samplers' `constraints_func`, which Optuna 4 needs
SETS_CONSTRAINTS = hasattr(optuna.trial.Trial, "set_constraint")
_CONSTRAINT = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(<=|>=)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str = "minimize"


@dataclass(frozen=True)
class Constraint:
    """`metric <= bound` or `metric >= bound` on one of the model's costs."""

    metric: str
    op: str
    bound: float

    def violation(self, value: float) -> float:
        """Optuna's convention: <= 0 when met, and how far off when not."""
        return value - self.bound if self.op == "<=" else self.bound - value

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"


def parse_constraints(text: str | Sequence[str] | None, where: str) -> tuple[Constraint, ...]:
    """`"latency_ms<=5,params<=20000"` (or a list of such) -> constraints on known costs."""
    parts = text.split(",") if isinstance(text, str) else list(text or [])
    constraints = []
    for part in (str(p) for p in parts if str(p).strip()):
        match = _CONSTRAINT.match(part)
        if match is None or match.group(1) not in COSTS:
            raise UsageError(
                f"{where} {part.strip()!r}: expected COST<=NUMBER or COST>=NUMBER with COST one "
                f"of {', '.join(COSTS)}, e.g. latency_ms<=5"
            )
        try:
            bound = float(match.group(3))
        except ValueError:
            raise UsageError(
                f"{where} {part.strip()!r}: {match.group(3)!r} is not a number"
            ) from None
        constraints.append(Constraint(match.group(1), match.group(2), bound))
    return tuple(constraints)


def with_first_objective(raw: dict) -> dict:
    """A space that names `objectives:` but no `metric:` optimises the first one."""
    first = raw.get("objectives")
    if "metric" in raw or not isinstance(first, list) or not first:
        return raw
    named = first[0] if isinstance(first[0], dict) else {}
    return {**raw, **{k: v for k, v in named.items() if k in ("metric", "direction")}}


def parse_goals(
    raw: dict, metric: str, direction: str, problems: list[str]
) -> tuple[tuple[Objective, ...], tuple[Constraint, ...]]:
    """A space's `objectives:` and `constraints:`, each problem added to `problems`."""
    objectives = parse_objectives(raw.get("objectives"), metric, direction, problems)
    try:
        constraints = parse_constraints(raw.get("constraints"), "constraints:")
    except UsageError as exc:
        problems.append(str(exc))
        constraints = ()
    return objectives, constraints


def parse_objectives(
    raw: Any, metric: str, direction: str, problems: list[str]
) -> tuple[Objective, ...]:
    """A space's `objectives:` list. The first is the task metric the study would optimise
    anyway (its `metric:`); the others are costs of the model, to minimise."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw or not all(isinstance(o, dict) for o in raw):
        problems.append("objectives: expected a list of {metric: NAME, direction: ...} mappings")
        return ()
    objectives = []
    for index, entry in enumerate(raw):
        name, way = entry.get("metric"), entry.get("direction", "minimize")
        unknown = set(entry) - {"metric", "direction"}
        if unknown:
            problems.append(f"objectives[{index}]: unknown key {sorted(unknown)[0]!r}")
        if index == 0:
            if name != metric or entry.get("direction", direction) != direction:
                problems.append(
                    f"objectives[0]: expected the study's metric ({metric}, {direction}), found "
                    f"{name!r}; name the quality metric first"
                )
            objectives.append(Objective(metric, direction))
        elif name not in COSTS or way != "minimize":
            problems.append(
                f"objectives[{index}]: expected one of {', '.join(COSTS)} (to minimize), found "
                f"{name!r} ({way})"
            )
        else:
            objectives.append(Objective(name, way))
    return tuple(objectives) if len(objectives) > 1 else ()


def best_rule(space: Any) -> str:
    """The study's rule for its best trial, in words (recorded with the study)."""
    way = "lowest" if space.direction == "minimize" else "highest"
    within = (
        f" among trials meeting {', '.join(map(str, space.constraints))}"
        if space.constraints
        else ""
    )
    front = " on the Pareto front" if space.multi_objective else ""
    return f"{way} {space.metric}{front}{within}, then {space.tie_break}, then the earliest"


# ----------------------------------------------------------------------------- reading back


def violations(constraints: Sequence[Constraint], costs: Mapping[str, float]) -> list[float]:
    return [c.violation(costs[c.metric]) for c in constraints]


def meets(trial: optuna.trial.FrozenTrial, constraints: Sequence[Constraint]) -> bool:
    """The trial's recorded costs meet `constraints` (a cost it never measured: no)."""
    attrs = trial_attrs.of(trial)
    return all(c.metric in attrs and c.violation(attrs[c.metric]) <= 0 for c in constraints)


def sampler_constraints(
    constraints: Sequence[Constraint],
) -> Callable[[optuna.trial.FrozenTrial], list[float]]:
    """Optuna's `constraints_func`, from the costs a trial recorded (one it never measured,
    such as the latency of a trial run before the constraint: counted as met)."""

    def func(trial: optuna.trial.FrozenTrial) -> list[float]:
        attrs = trial_attrs.of(trial)
        return [c.violation(attrs[c.metric]) if c.metric in attrs else 0.0 for c in constraints]

    return func


def dominated(
    values: Sequence[float], others: Sequence[Sequence[float]], directions: Sequence[str]
) -> bool:
    """Some other point is at least as good on every objective and better on one."""
    signs = [1.0 if d == "minimize" else -1.0 for d in directions]
    mine = [s * v for s, v in zip(signs, values, strict=True)]
    for other in others:
        theirs = [s * v for s, v in zip(signs, other, strict=True)]
        if all(t <= m for t, m in zip(theirs, mine, strict=True)) and theirs != mine:
            return True
    return False
