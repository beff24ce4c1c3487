"""What a fine-tune's starting weights are worth: the same architecture, trained from fresh
weights on the same data, split and epochs (at the source's own lr, as its search chose it),
in a study of its own (`<fine-tune>-scratch`, recorded like any). Where it scores as well as
the fine-tune, the source taught the new data nothing."""

from __future__ import annotations

import dataclasses

from tuner import study as studies
from tuner.config.space import SearchSpace
from tuner.storage.studies import read_studies


def scratch_study(
    prepared: studies.Prepared, config: studies.SearchConfig, source_lr: float
) -> studies.Prepared:
    """The fine-tune's settings (its searched ones at their fixed values), fresh weights,
    checked as any study is before the fine-tune creates anything."""
    space = prepared.space
    fixed = {**space.fixed, "lr": source_lr, "freeze_layers": 0}
    draft = dataclasses.replace(
        prepared,
        space=SearchSpace(space.metric, space.direction, (), fixed, "<from scratch>"),
        name=f"{prepared.name}-scratch",
        model_name=f"{prepared.model_name}-scratch",
        make_model=None,
        lineage={},
        bar=None,
        notes=[],
    )
    return studies.checked(draft, _quiet(config), read_studies(prepared.storage))


def train_from_scratch(scratch: studies.Prepared, config: studies.SearchConfig) -> float | None:
    """One more run of the scratch study (as a plain fine-tune adds one); its best value."""
    finished = studies.count_finished_by_name(scratch.name, scratch.storage)
    config = dataclasses.replace(_quiet(config), trials=finished + 1)
    return studies.execute(scratch, config).best_value


def _quiet(config: studies.SearchConfig) -> studies.SearchConfig:
    return dataclasses.replace(config, quiet=True, warm_start=None, pruner="none")
