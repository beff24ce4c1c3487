"""A study continued after a change of its space (`--allow-changes`): its earlier trials stay
in the study, each with the settings it ran under (`settings`), but the sampler learns only
from those whose params the new space can still take. Without this filter Optuna's samplers
read every trial: a trial of a dropped choice makes TPE fail (it cannot encode the value),
and one outside a narrowed range pulls the sampler where it may no longer go."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial

from tuner.config.space import SearchSpace


def fits(trial: FrozenTrial, space: dict[str, BaseDistribution]) -> bool:
    """Every param the trial shares with the space is a value the space can take."""
    for name, value in trial.params.items():
        if name not in space:
            continue
        try:
            inside = space[name]._contains(space[name].to_internal_repr(value))
        except ValueError:  # a choice the space no longer has
            return False
        if not inside:
            return False
    return True


class _InSpace:
    """The study as the sampler sees it: the trials that fit the space."""

    def __init__(self, study: optuna.Study, space: dict[str, BaseDistribution]) -> None:
        self._study, self._space = study, space

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, *args: Any, **kwargs: Any) -> list[FrozenTrial]:
        return [t for t in self._study._get_trials(*args, **kwargs) if fits(t, self._space)]

    def get_trials(self, *args: Any, **kwargs: Any) -> list[FrozenTrial]:
        return [t for t in self._study.get_trials(*args, **kwargs) if fits(t, self._space)]

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


class LearnsInSpace(BaseSampler):
    """`base`, shown only the trials whose params fit `space`."""

    def __init__(self, base: BaseSampler, space: SearchSpace) -> None:
        self.base = base
        self.space = {spec.name: spec.distribution() for spec in space.params}

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.base.infer_relative_search_space(_InSpace(study, self.space), trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.base.sample_relative(_InSpace(study, self.space), trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        view = _InSpace(study, self.space)
        return self.base.sample_independent(view, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: Any, values: Any
    ) -> None:
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()
