"""What a user's model provides and what will not work with it, found before anything is
created: the search refuses up front, with one line, what its trial loop does not support
(manual optimisation, a scheduler that needs a metric, list-style optimizers, two sources
of loaders, an empty validation loader, a metric the module never logs), and what a flag
needs that the model lacks (a forward and an input example for `latency_ms`, an nn.LSTM for
`--freeze-layers`). `tuner tasks --check REF` prints the whole list."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

from tuner.config.settings import TaskSpec
from tuner.config.space import SearchSpace
from tuner.custom import data as user_data
from tuner.custom.building import build_datamodule, build_model
from tuner.custom.inputs import has_forward
from tuner.custom.loading import UserParts
from tuner.custom.signature import arguments, takes
from tuner.errors import DataError, UsageError

SEARCH, LATENCY, FREEZE = "search", "--constraint latency_ms", "--freeze-layers"
ENSEMBLE = "tuner ensemble"


@dataclass(frozen=True)
class Finding:
    """One line of the check: what a topic provides, or (`refuses`) what it blocks."""

    topic: str
    text: str
    refuses: str = ""  # SEARCH, LATENCY, FREEZE, ENSEMBLE: what cannot run; "": fine, or a note


def check_search(
    parts: UserParts, spec: TaskSpec, space: SearchSpace, data: Mapping[str, Any]
) -> tuple[SearchSpace, list[str]]:
    """The task's `fit_space`: refuse what this search cannot do, before any trial."""
    findings = inspect_model(parts, spec, space, data)
    blocked = {SEARCH}
    if space.measures_latency:
        blocked.add(LATENCY)
    if int(space.fixed.get("freeze_layers") or 0) > 0:
        blocked.add(FREEZE)
    for finding in findings:
        if finding.refuses in blocked:
            raise UsageError(f"--task {parts.name}: {finding.text}")
    notes = [f"{parts.model.__qualname__}: no baseline declared (docs/custom.md)"]
    notes += [f"tuner ensemble will refuse it: {f.text}" for f in findings
              if f.refuses == ENSEMBLE]  # fmt: skip
    if parts.space is None:
        searched = ", ".join(p.name for p in space.params) or "nothing"
        notes.append(
            f"space derived from {parts.model.__qualname__}.__init__: searched "
            f"{searched} (a SPACE in the module, or a .yaml beside it, chooses)"
        )
    return space, notes


def inspect_model(
    parts: UserParts, spec: TaskSpec, space: SearchSpace, data: Mapping[str, Any]
) -> list[Finding]:
    """Every finding, in order; building the model stops the list where it fails."""
    findings = _constructor(parts, space)
    if any(f.refuses for f in findings):
        return findings
    settings = check_settings(spec, space)
    try:
        datamodule = build_datamodule(parts, spec, data, settings)
        model = build_model(parts, spec, settings, datamodule)
    except Exception as exc:  # the user's constructor: any error, said in one line
        line = (str(exc).splitlines() or [""])[0][:200]
        return [*findings, Finding("model", f"building it failed: {type(exc).__name__}: "
                                            f"{line}", SEARCH)]  # fmt: skip
    findings += _optimisation(model)
    loaders = _loaders(parts, model, datamodule)
    findings += loaders
    averaging = _refused("ensembles", "not checked: the loaders give no batches", ENSEMBLE)
    if not any(f.refuses for f in loaders):
        logged, outputs = _one_validation_batch(model, datamodule)
        findings.append(_metric(logged, space.metric))
        averaging = _averaging(model, outputs)
    frozen = int(space.fixed.get("freeze_layers") or 0)
    return [*findings, *_serving(parts, model), *_other(parts, model, frozen), averaging]


def check_settings(spec: TaskSpec, space: SearchSpace) -> dict[str, Any]:
    """One trial's settings for the check: defaults, the space's fixed values, and each
    searched param's first value (or its smallest: the cheapest model)."""
    settings = {**spec.defaults, **space.fixed}
    for param in space.params:
        value = space.first.get(param.name)
        if value is None:
            value = param.choices[0] if param.kind == "categorical" else param.low
            value = int(value) if param.kind == "int" else value
        settings[param.name] = value
    return settings


def _constructor(parts: UserParts, space: SearchSpace) -> list[Finding]:
    """The hyperparameters: every constructor argument without a default needs a value."""
    given = {*space.fixed, *(p.name for p in space.params)}
    owners = [parts.model] + ([parts.data] if parts.data is not None else [])
    findings = []
    for owner in owners:
        found = arguments(owner, model=owner is parts.model)
        named = ", ".join(a.name for a in found if a.setting) or "none"
        findings.append(Finding("hyperparameters", f"{owner.__qualname__}: {named}"))
        for argument in found:
            if argument.required and (argument.setting is None or argument.name not in given):
                kind = "" if argument.setting else " (not a number, text or flag)"
                findings.append(Finding(
                    "hyperparameters", f"{owner.__qualname__}.__init__ argument "
                    f"{argument.name!r}{kind} has no default: give it one, or a value in the "
                    f"space's fixed:", SEARCH))  # fmt: skip
    return findings


def _optimisation(model: Any) -> list[Finding]:
    """The trial loop steps one optimizer (and a scheduler by epoch or step) itself."""
    from tuner.training.loop import optimizers_of

    if not model.automatic_optimization:
        return [_refused("optimisation", f"{type(model).__name__} optimises manually "
                         f"(automatic_optimization = False); the trial loop steps the "
                         f"optimizer itself")]  # fmt: skip
    configured = model.configure_optimizers()
    schedule = configured.get("lr_scheduler") if isinstance(configured, Mapping) else None
    options = schedule if isinstance(schedule, Mapping) else {"scheduler": schedule}
    if options.get("monitor") or options.get("frequency", 1) != 1:
        return [
            _refused(
                "optimisation",
                "configure_optimizers: a scheduler with a monitor "
                "or a frequency is not supported; step it by epoch or step",
            )
        ]
    if type(options.get("scheduler")).__name__ == "ReduceLROnPlateau":
        return [
            _refused(
                "optimisation",
                "configure_optimizers: ReduceLROnPlateau needs a "
                "metric at each step, which the trial loop does not give it",
            )
        ]
    try:
        optimizers_of(configured)
    except TypeError as exc:
        return [_refused("optimisation", f"{exc} (list-style and several optimizers are "
                         f"not supported)")]  # fmt: skip
    return [Finding("optimisation", f"{type(configured).__name__} from configure_optimizers")]


def _refused(topic: str, text: str, refuses: str = SEARCH) -> Finding:
    return Finding(topic, text, refuses)


def _loaders(parts: UserParts, model: Any, datamodule: Any) -> list[Finding]:
    """One source of loaders, and batches in both the training and validation ones."""
    import lightning.pytorch as pl

    own = [
        hook for hook in user_data.LOADERS if user_data.overrides(model, hook, pl.LightningModule)
    ]
    if parts.data is not None and own:
        return [Finding("data", f"{type(model).__name__} defines {', '.join(own)} and "
                        f"DATA is given too: the trial would read only one; keep one "
                        f"source", SEARCH)]  # fmt: skip
    source = parts.data.__qualname__ if parts.data is not None else type(model).__name__
    found = []
    for hook in ("train_dataloader", "val_dataloader"):
        if not len(getattr(datamodule, hook)()):
            found.append(Finding("data", f"{source}.{hook} gives no batches", SEARCH))
    return found or [Finding("data", f"loaders from {source}")]


def _one_validation_batch(model: Any, datamodule: Any) -> tuple[dict[str, float], list]:
    """What validation_step logs on one batch, and what the model's forward returned
    there (an ensemble averages those outputs: a step that never calls it cannot be)."""
    from tuner.training.loop import evaluate

    outputs: list[Any] = []
    own = model.forward

    def counted(*args: Any, **kwargs: Any) -> Any:
        outputs.append(own(*args, **kwargs))
        return outputs[-1]

    model.forward = counted
    try:
        logged = evaluate(model, list(islice(datamodule.val_dataloader(), 1)), "val")
    finally:
        del model.forward
    return logged, outputs


def _metric(logged: Mapping[str, float], metric: str) -> Finding:
    """The metric the space optimises, logged on one validation batch."""
    if metric not in logged:
        names = ", ".join(sorted(logged)) or "nothing"
        return Finding(
            "metric",
            f"{metric!r} is never logged in validation_step (it logs "
            f"{names}): self.log({metric!r}, ...) there, or set METRIC",
            SEARCH,
        )
    return Finding("metric", f"{metric} logged in validation_step")


def _averaging(model: Any, outputs: list) -> Finding:
    """`tuner ensemble` and `--seeds` average the members' forward outputs, so the
    validation step must score what forward returns, and forward return one tensor."""
    import torch

    name = type(model).__name__
    if not outputs:
        return _refused(
            "ensembles",
            f"validation_step never calls {name}.forward, so an ensemble could not average "
            f"its members; expected it to score self(x) (docs/custom.md)",
            ENSEMBLE,
        )
    kinds = sorted({type(out).__name__ for out in outputs if not torch.is_tensor(out)})
    if kinds:
        return _refused(
            "ensembles",
            f"{name}.forward returns {', '.join(kinds)}; expected one tensor per call, which "
            f"an ensemble averages",
            ENSEMBLE,
        )
    return Finding(
        "ensembles",
        f"validation_step scores {name}.forward: tuner ensemble and "
        f"--seeds average the members' outputs (their mean)",
    )


def _serving(parts: UserParts, model: Any) -> list[Finding]:
    """What predict, MLflow's pyfunc and latency need: a predict function or a forward,
    and an input example."""
    name = type(model).__name__
    example = getattr(model, "example_input_array", None)
    found = [
        Finding("predict", "the module's predict(model, frame)" if parts.predict else
                f"{name}.forward on the input column" if has_forward(model) else
                f"no predict and no {name}.forward: tuner predict and pyfunc refuse it"),
        Finding("latency", f"{name}.forward on example_input_array"
                if has_forward(model) and example is not None else
                f"latency_ms needs {name}.forward and example_input_array", "" if
                has_forward(model) and example is not None else LATENCY),
    ]  # fmt: skip
    return found


def _new_data(parts: UserParts) -> Finding:
    """How a fine-tune reaches new data: `--data`, where the data module takes it."""
    if parts.data is not None and takes(parts.data, "data"):
        return Finding("fine-tune", f"--data passed to {parts.data.__qualname__}(data=...)")
    return Finding("fine-tune", "on the same data only: --data needs a data module with a "
                   "`data` argument (docs/custom.md)")  # fmt: skip


def _other(parts: UserParts, model: Any, frozen: int) -> list[Finding]:
    return [
        _freezing(model, frozen),
        _new_data(parts),
        Finding("baselines", "none declared: the summary says so; the gate compares "
                "validation figures"),
    ]  # fmt: skip


def _freezing(model: Any, frozen: int) -> Finding:
    """What `--freeze-layers` freezes: the first layers of the model's first nn.LSTM."""
    from tuner.contract.lstm import first_lstm  # torch: when a model is checked

    lstm = first_lstm(model)
    if lstm is None:
        return _refused("fine-tune", "--freeze-layers needs an nn.LSTM in the model", FREEZE)
    name, layers = lstm[0], lstm[1].num_layers
    if frozen > layers:
        return _refused("fine-tune", f"--freeze-layers {frozen}: {name} has {layers} "
                        f"layer(s); expected 0 to {layers}", FREEZE)  # fmt: skip
    return Finding("fine-tune", f"--freeze-layers freezes layers of {name} ({layers})")


def check_averaging(parts: UserParts, spec: TaskSpec, data: Mapping[str, Any],
                    settings: Mapping[str, Any]) -> None:  # fmt: skip
    """The task's `check_ensemble`: refuse, before anything is trained or logged, a model
    whose members' outputs an ensemble could not average (built from `settings`, the
    lead member's, and scored on one validation batch)."""
    datamodule = build_datamodule(parts, spec, data, settings)
    model = build_model(parts, spec, settings, datamodule)
    finding = _averaging(model, _one_validation_batch(model, datamodule)[1])
    if finding.refuses:
        raise UsageError(f"--task {parts.name}: {finding.text}")


def check_fits(parts: UserParts, spec: TaskSpec, hyper_parameters: Mapping[str, Any],
               data: Mapping[str, Any]) -> None:  # fmt: skip
    """A fine-tune onto data whose state differs (another vocabulary, other classes) is
    refused: the data module's `model_args()` must give what the model was built with."""
    datamodule = build_datamodule(parts, spec, data, spec.defaults)
    for name, value in datamodule.model_args().items():
        if name in hyper_parameters and hyper_parameters[name] != value:
            raise DataError(
                f"the new data gives {name} = {_short(value)}, the model was built with "
                f"{_short(hyper_parameters[name])}: a fine-tune keeps it (docs/custom.md)"
            )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
