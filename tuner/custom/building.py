"""A trial's model and data for a user's model: settings from the constructors, the data
module and the model built from one trial's settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.config.settings import Setting, TaskSpec
from tuner.custom.data import UserData, build_source
from tuner.custom.loading import UserParts
from tuner.custom.signature import arguments, takes
from tuner.custom.space import direction_of

FRAMEWORK = {"max_epochs": 10, "grad_clip": 0.0}  # the user's module clips if it wants to


def spec_of(parts: UserParts) -> TaskSpec:
    """Every plain constructor argument of the model and the data module as a setting
    (model arguments first; a name both take goes to both)."""
    model = [a.setting for a in arguments(parts.model, model=True) if a.setting]
    named = {setting.name for setting in model}
    data = []
    if parts.data is not None:
        data = [a.setting for a in arguments(parts.data, model=False)
                if a.setting and a.setting.name not in named]  # fmt: skip
    metric = parts.metric or "val_loss"
    direction = parts.direction or direction_of(metric)
    return TaskSpec(parts.name, metric, direction, (*model, *data), framework=FRAMEWORK)


def model_settings(spec: TaskSpec, parts: UserParts) -> list[Setting]:
    names = {a.name for a in arguments(parts.model, model=True)}
    return [s for s in spec.table.values() if s.name in names]


def build_datamodule(parts: UserParts, spec: TaskSpec, data: Mapping[str, Any],
                     settings: Mapping[str, Any]) -> UserData:  # fmt: skip
    """The user's data module from the trial's data settings (and --data, where it takes
    `data`), or an empty one the model's own loaders fill."""
    if parts.data is None:
        return UserData()
    given = {a.name: settings[a.name] for a in arguments(parts.data, model=False)
             if a.setting and a.name in settings}  # fmt: skip
    if takes(parts.data, "data") and data.get("data") is not None:
        given["data"] = data["data"]
    return UserData(build_source(parts.data, given))


def build_model(
    parts: UserParts, spec: TaskSpec, settings: Mapping[str, Any], datamodule: UserData
) -> Any:
    """The user's model from the trial's settings and what its data decides
    (`model_args()` of the data module), with them as its hyperparameters: a checkpoint
    rebuilds it from them."""
    args = {s.name: settings[s.name] for s in model_settings(spec, parts) if s.name in settings}
    args.update(datamodule.model_args())
    model = parts.model(**args)
    if not model.hparams:
        model.save_hyperparameters(args)
    adopt(model, datamodule)
    return model


def adopt(model: Any, datamodule: UserData) -> None:
    """With no data module, the model's own loaders serve the trial."""
    if datamodule.source is None:
        datamodule.model = model
