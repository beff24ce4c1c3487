"""The Task contract: what a task provides to the framework, and all the framework knows of
it. A task is one module (`tasks/<name>/task.py`, or any module named by `--task
mypkg.mytask`) exposing `TASK = Task(...)`; a user's own LightningModule (a module exposing
`MODEL`, docs/custom.md) becomes one through `tuner.custom`. `tuner.tasks.base.Task` is kept
as an alias for tasks written against it. Nothing here imports torch: the contract's types
are annotations only.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.config.settings import TaskSpec

if TYPE_CHECKING:
    import lightning.pytorch as pl
    import pandas as pd
    import torch


@dataclass(frozen=True)
class Task:
    """What a task provides to the framework.

    Fields:
        spec: its declaration (name, metric and direction, the metrics it logs, every
            setting with its type, range and default, its predict options); see
            `tuner.config.settings.TaskSpec`. Tasks written before it give name, metric,
            direction, defaults and choices instead, and a spec is made from those.
        add_data_args: adds the task's data flags (--data, columns...) to a parser.
        load_data: reads and validates the input once per study (dict of the data flags).
        fit_space: adapts a space to the data (e.g. clips window lengths) and refuses data
            that cannot make one trial of it (DataError); returns the space and notes.
        build_datamodule: in-memory tensors for one trial's settings.
        build_model: a LightningModule for one trial's settings and data.
        model_class: rebuilds a model from a checkpoint's hyperparameters.
        predict: model + data options + settings + predict options (`spec.predict_options`)
            -> a table a person can read; the task reads the data itself (it may need none).
        baselines: the data module's baseline metrics (seasonal naive, majority class...),
            logged beside the model's test metrics; default: its `baseline_metrics`.
        statistical_baselines: (data, settings) -> stronger baselines' test metrics (a
            statistical model, a feature classifier) on the test part the trials share,
            computed once per study before its first trial (None: the task has none).
        split_settings: the settings that move the test part; a space that searches one
            gets no statistical baselines (each trial's test part would differ).
        backbone: the model's LSTMBackbone, whose first layers a fine-tune may freeze;
            default: its `backbone` attribute.
        upgrade: turns a checkpoint's hyperparameters written by an older version of the
            task into today's constructor arguments (default: unchanged).
        example: a small input `predict` accepts, as a DataFrame, from the loaded data and a
            trial's settings: the input example and signature of the MLflow Model.
        fold_models: which of its K fold models a K-fold trial keeps, as one model that
            combines them: "all" (right for exchangeable folds such as stratified ones) or
            "recent" (the newest half, folds 0 to ceil(K / 2) - 1: backtests, whose older
            folds trained on less and staler data; on the airline, averaging all four
            scored worse on the test part than the newest two, benchmarks/RESULTS.md).
        combine: how the outputs of several models of the task become one (the fold models
            a K-fold trial keeps, `tuner.contract.members`); default: their mean.
        default_data: the path of shipped demo data, used when --data is not given.
        ensemble_inputs: the hyperparameters that shape what a model reads and emits; the
            trials of a `tuner ensemble` must agree on them (None: the task's models cannot
            be averaged across trials yet).
        reframe: (the carrier's hyperparameters, a member model) -> the member as it reads
            the carrier's inputs (itself when they agree), for members whose
            `ensemble_inputs` differ; raises ValueError saying why it cannot. None: they must
            agree.
        report_views: (the best model, its data module: fold 0 built from its settings) ->
            what its user looks at on the test part, as (title, view) pairs: a view is a
            function drawing one matplotlib figure (a forecast against the actuals, a
            confusion matrix) or an HTML fragment the task escaped (sample transcripts);
            `tuner report` shows them.
        check_ensemble: (loaded data, the lead member's settings) -> raises UsageError
            where the task's models cannot be averaged (a user's model whose validation
            step does not score its forward); asked before anything is trained or logged.
        forward_inputs: how many leading elements of a batch the model's forward takes
            (1: the inputs; 2: inputs and lengths): `latency_ms` times that forward.
        fits_model: (a trained model's hyperparameters, loaded data) -> raises DataError
            when the model cannot read the data or learn from it (other features, classes
            it has no output for); a fine-tune asks before anything is created.
        smoke: tiny settings for tests.
        default_space: the search space used without --space, as a space file's mapping
            or a path (None: search_spaces/<name>.yaml of the shipped tasks).
        timing_inputs: (model, data module) -> the inputs `latency_ms` times the forward
            on (None: the first `forward_inputs` elements of a validation batch).
        adopt: (model, data module) -> None, called with each model built for a trial's
            data (a user's model that brings its own loaders serves them); None: nothing.
        code: the files or package folders logged beside the model so that MLflow's pyfunc
            imports the task again (a user's own model, tuner.custom); () for shipped tasks.
    """

    add_data_args: Callable[[argparse.ArgumentParser], None]
    load_data: Callable[[Mapping[str, Any]], Any]
    fit_space: Callable[[Any, Any], tuple[Any, list[str]]]
    build_datamodule: Callable[[Any, Mapping[str, Any]], pl.LightningDataModule]
    build_model: Callable[[Mapping[str, Any], pl.LightningDataModule], pl.LightningModule]
    model_class: type[pl.LightningModule]
    predict: Callable[
        [pl.LightningModule, Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]],
        pd.DataFrame,
    ]
    spec: TaskSpec | None = None
    baselines: Callable[[Any], Mapping[str, float]] = lambda datamodule: dict(
        getattr(datamodule, "baseline_metrics", {})
    )
    statistical_baselines: Callable[[Any, Mapping[str, Any]], Mapping[str, float]] | None = None
    split_settings: tuple[str, ...] = ()
    backbone: Callable[[Any], Any] = lambda model: getattr(model, "backbone", None)
    upgrade: Callable[[dict[str, Any]], dict[str, Any]] = lambda hyper_parameters: dict(
        hyper_parameters
    )
    example: Callable[[Any, Mapping[str, Any]], pd.DataFrame] | None = None
    fold_models: str = "all"
    combine: Callable[[list[torch.Tensor]], torch.Tensor] | None = None
    default_data: str | None = None
    forward_inputs: int = 1
    ensemble_inputs: tuple[str, ...] | None = None
    reframe: Callable[[Mapping[str, Any], Any], Any] | None = None
    check_ensemble: Callable[[Any, Mapping[str, Any]], None] | None = None
    report_views: Callable[[Any, Any], list[tuple[str, Callable[[], None] | str]]] | None = None
    fits_model: Callable[[Mapping[str, Any], Any], None] | None = None
    smoke: Mapping[str, Any] = field(default_factory=dict)
    default_space: Mapping[str, Any] | str | None = None
    timing_inputs: Callable[[Any, Any], tuple[Any, ...]] | None = None
    adopt: Callable[[Any, Any], None] | None = None
    code: tuple[Path, ...] = ()
    name: str = ""
    metric: str = ""
    direction: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        spec = self.spec or TaskSpec.from_defaults(
            self.name, self.metric, self.direction, self.defaults, self.choices
        )
        for key, value in (
            ("spec", spec),
            ("name", spec.name),
            ("metric", spec.metric),
            ("direction", spec.direction),
            ("defaults", spec.defaults),
            ("choices", spec.choices),
        ):
            object.__setattr__(self, key, value)

    def checked_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The task's predict options (spec.predict_options) with the given values checked
        and the others at their defaults; an option the task does not take is refused."""
        from tuner.config.settings import check_values
        from tuner.errors import UsageError

        declared = {setting.name: setting for setting in self.spec.predict_options}
        for key in given:
            if key not in declared:
                takes = ", ".join(f"--{name}" for name in declared) or "none"
                raise UsageError(
                    f"--{key}: task {self.name!r} takes no such option (it takes {takes})"
                )
        check_values(given, declared.values())
        return {**{name: s.default for name, s in declared.items()}, **given}

    def data_keys(self) -> list[str]:
        """The names of the task's data options (the dests of its data flags)."""
        scratch = argparse.ArgumentParser(add_help=False)
        self.add_data_args(scratch)
        return [action.dest for action in scratch._actions]
