"""`tuner export`: a trained model as ONNX (float) or int8 graphs that ONNX Runtime runs,
checked against the float model before anything is registered.

The forwards the model makes are recorded on the source's validation parts and on the task's
predict example (a language model's generation adds its stateful step), and each is written
as a graph (tuner.models.onnx_graphs). The export is then scored the one way every model is
(tuner.models.scoring: fold by fold on the validation parts): one that loses more than
`tolerance` (relative) of the float model's validation figure is refused, nothing
registered. What passes is an MLflow Model of its own (`<model>-onnx`, `<model>-int8`),
logged with its figures and its lineage (tuner.tracking.exports), that MLflow's pyfunc
serves with the task's own predict around the graphs (tuner.contract.exported)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner.config import keys
from tuner.contract import onnx_graphs
from tuner.contract.exported import MANIFEST, OnnxForward, recording
from tuner.contract.members import RULE, split
from tuner.contract.task import Task
from tuner.errors import TunerError, UsageError
from tuner.models.scoring import combined, fold_models, rows_of, validation_figure
from tuner.models.sources import LoadedSource, data_args_for, load_source
from tuner.training.costs import weights_mb
from tuner.training.loop import evaluate

FORMS = ("onnx", "int8")
CHECKPOINT = "model.ckpt"


class ExportRefused(TunerError):
    """The export lost more of the validation figure than the tolerance allows."""


@dataclass
class ExportResult:
    form: str
    folder: Path
    metric: str
    figures: dict[str, float]  # float / export figure, difference, latency and size of each
    lineage: dict[str, str] = field(default_factory=dict)
    name: str = ""  # the registered model, `<model>-<form>`
    version: str = ""
    example: Any = None  # the task's predict example: the MLflow Model's input example
    kept: bool = False  # the files stay in `folder` (--out)

    @property
    def uri(self) -> str:
        """The registered version, or "" where none was registered."""
        return f"models:/{self.name}/{self.version}" if self.version else ""


def check_form(form: str, tolerance: float, name: str = "") -> None:
    """The export's flags, before anything is loaded."""
    if form not in FORMS:
        raise UsageError(f"--format {form!r}: expected one of {', '.join(FORMS)}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
        raise UsageError(f"--tolerance {tolerance!r}: expected a number, e.g. 0.01")
    if not 0 <= tolerance <= 1:
        raise UsageError(f"--tolerance {tolerance:g}: expected a fraction from 0 to 1, e.g. 0.01")
    if any(c in name for c in "/:") or len(name) > 200:
        raise UsageError(f"--name {name!r}: a registered model's name holds no '/' or ':' "
                         f"(and at most 200 characters)")  # fmt: skip


def export_files(
    loaded: LoadedSource, form: str, folder: Path, tolerance: float, frame: Any
) -> ExportResult:
    """Write the `form` export of the loaded model into `folder` (its graphs, the checkpoint
    and the manifest), checked and measured on `frame` (its task's loaded data); raises
    ExportRefused past `tolerance`."""
    payload, task = loaded.payload, loaded.task
    settings, meta = payload["settings"], payload["meta"]
    models = fold_models(payload, task)
    groups, datamodules = _scored_layout(models, task, frame, payload)
    metric = str(meta.get("metric") or task.spec.metric)
    rule = payload.get(RULE, "")
    before = validation_figure(groups, task, datamodules, rule)[metric]
    example = task.example(frame, settings) if task.example is not None else None
    calls = _recorded(groups, task, datamodules, example, settings, rule)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {folder}: cannot be made ({exc.strerror})") from None
    members = [onnx_graphs.write_graphs(m, c, folder, f"m{i}", form == "int8")
               for i, (m, c) in enumerate(zip(models, calls, strict=True))]  # fmt: skip
    measured = _measured(models, calls, members, folder, form)  # the graphs answer from here
    after = validation_figure(groups, task, datamodules, rule)[metric]
    shutil.copyfile(loaded.source.path, folder / CHECKPOINT)
    figures = {f"float_{metric}": before, f"{form}_{metric}": after, **measured,
               "folds": float(len(datamodules))}  # fmt: skip
    figures["relative_loss"] = _relative_loss(before, after, meta.get("direction"))
    manifest = {"forms": {form: members}, "checkpoint": CHECKPOINT, "figures": figures}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    lineage = dict(loaded.source.lineage)
    result = ExportResult(form, folder, metric, figures, lineage, example=example)
    if figures["relative_loss"] > tolerance:
        raise ExportRefused(
            f"the {form} export loses {figures['relative_loss']:.2%} of {metric} "
            f"({before:.6g} -> {after:.6g}; --tolerance {tolerance:g}): not registered"
        )
    return result


def _measured(models: list, calls: list, members: list, folder: Path, form: str) -> dict:
    """Latency per sequence (1 thread) and size of the float models and of their graphs,
    and the graphs' largest output difference; each model answers through its graphs after."""
    forwards = [OnnxForward(graphs, folder, threads=1) for graphs in members]
    pairs = list(zip(models, forwards, calls, strict=True))
    float_ms = sum(onnx_graphs.latency_ms(m, _timed(c)) for m, _, c in pairs)
    largest = max(onnx_graphs.largest_difference(f, c) for _, f, c in pairs)
    export_ms = sum(onnx_graphs.latency_ms(f, _timed(c)) for _, f, c in pairs)
    float_mb = weights_mb(models)
    for model, forward in zip(models, forwards, strict=True):
        model.forward = forward
    return {
        "largest_difference": largest, "float_latency_ms": float_ms,
        f"{form}_latency_ms": export_ms, "float_size_mb": float_mb,
        f"{form}_size_mb": onnx_graphs.size_mb(sorted(folder.glob("*.onnx"))),
    }  # fmt: skip


def _scored_layout(
    models: list, task: Task, frame: Any, payload: Mapping[str, Any]
) -> tuple[list[list], list]:
    """How the checkpoint's models are scored (as tuner.models.topk scores them): each
    member's (or the one trial's) fold models, fold `f` of every member together on fold
    `f`'s validation part; an ensemble carries its members' models member by member."""
    members = len(payload["meta"].get("members") or []) or 1
    if len(models) % members:
        raise UsageError(f"the checkpoint holds {len(models)} models for {members} members")
    folds = len(models) // members
    groups = [models[m * folds : (m + 1) * folds] for m in range(members)]
    settings = payload["settings"]
    datamodules = [task.build_datamodule(frame, {**settings, "fold": f}) for f in range(folds)]
    if task.adopt is not None:
        for datamodule, model in zip(datamodules, models, strict=False):
            task.adopt(model, datamodule)
    return groups, datamodules


def _recorded(
    groups: list[list], task: Task, datamodules: list, example: Any, settings: Mapping, rule: str
) -> list[dict]:
    """The forwards each model makes (in `models` order: member by member), fold by fold as
    the figure and MLflow's loader run them: the fold's models as one on its validation part
    and on the task's example. Refused where the validation step never calls the forward
    (what the graphs replace)."""
    found = {}
    for fold, datamodule in enumerate(datamodules):
        model = combined([[group[fold]] for group in groups], task, rule)
        try:
            with recording(model) as calls:
                evaluate(model, datamodule.val_dataloader(), "val")
                if not calls[0]:
                    raise UsageError(
                        f"{type(model).__name__}'s validation_step never calls its forward "
                        f"(self(...)): an export replaces the forward, so it could not be "
                        f"checked; call self(inputs) in validation_step and predict to export it"
                    )  # fmt: skip
                if example is not None:
                    task.predict(model, {"data": example}, settings, task.checked_options({}))
        finally:
            split(model)
        found |= {(member, fold): seen for member, seen in enumerate(calls)}
    return [found[m, f] for m in range(len(groups)) for f in range(len(datamodules))]


def _timed(calls: dict[str, tuple[tuple, Any]]) -> tuple:
    """The inputs latency is timed on: the first call recorded (a validation batch)."""
    return next(iter(calls.values()))[0]


def _relative_loss(before: float, after: float, direction: str | None) -> float:
    """How much worse the export scores, as a fraction of the float figure (a better
    figure is a negative loss)."""
    sign = -1.0 if direction == "maximize" else 1.0
    return sign * (after - before) / max(abs(before), 1e-12)


def export(
    source: str,
    form: str = "onnx",
    tolerance: float = 0.01,
    out: str | Path | None = None,
    name: str = "",
    register: bool = True,
    storage: str | None = None,
    tracking_uri: str | None = None,
    task: str | None = None,
    data: Mapping[str, Any] | None = None,
    quiet: bool = True,
) -> ExportResult:
    """Export the model SOURCE names as `form`, check it on its data (`data`: other data
    options, as `predict` takes them), and register it as a version of `<model>-<form>`
    (unless `register` is False); `out` keeps the files too."""
    from tuner import study as studies
    from tuner.runtime.scratch import scratch_folder
    from tuner.storage.locations import resolve_storage, resolve_tracking
    from tuner.tracking.exports import register_export

    check_form(form, tolerance)
    studies.quiet_libraries()
    storage = resolve_storage(storage)
    tracking_uri, _ = resolve_tracking(tracking_uri)
    loaded = load_source(source, tracking_uri, storage, task)
    frame = loaded.task.load_data(data_args_for(loaded.payload, data or {}, loaded.task))
    if not quiet:
        print(f"exporting {source} as {form}: writing its graphs, then scoring them on the "
              f"validation parts beside the float model...", flush=True)  # fmt: skip
    folder = Path(out) if out else scratch_folder("tuner-export-") / "export"
    result = _written_or_nothing(loaded, form, folder, tolerance, frame)
    result.name, result.kept = f"{name or _model_name(loaded)}-{form}", out is not None
    if register:
        result.version = register_export(tracking_uri, result, loaded.task)
    return result


def _written_or_nothing(
    loaded: LoadedSource, form: str, folder: Path, tolerance: float, frame: Any
) -> ExportResult:
    """export_files, and nothing left in `folder` where it is refused or fails."""
    existed = folder.exists()  # and empty: api.export refuses one that holds files
    try:
        return export_files(loaded, form, folder, tolerance, frame)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        if existed:
            folder.mkdir()
        raise


def _model_name(loaded: LoadedSource) -> str:
    lineage = {k.removeprefix(keys.TAG): v for k, v in loaded.source.lineage.items()}
    return lineage.get("source_model") or lineage.get("source_study") or loaded.source.path.stem


def describe(result: ExportResult) -> list[str]:
    """What `tuner export` prints: the figures of the float model and the export side by
    side, on the rows they were scored on."""
    f, m, form = result.figures, result.metric, result.form
    rows = rows_of(int(f.get("folds", 1)))
    lines = [
        f"{form} export of {result.lineage.get(keys.TAG + 'source', 'the model')}:",
        f"  {m} on {rows}: float {f[f'float_{m}']:.6g}, {form} {f[f'{form}_{m}']:.6g} "
        f"({_change(f['relative_loss'])})",
        f"  largest output difference {f['largest_difference']:.3g} (the network's outputs, "
        f"before the task turns them into its table)",
        f"  latency per sequence, 1 thread: float {f['float_latency_ms']:.3g} ms, "
        f"{form} {f[f'{form}_latency_ms']:.3g} ms",
        f"  size: float {f['float_size_mb']:.3g} MB, {form} {f[f'{form}_size_mb']:.3g} MB "
        f"(its graphs; the registered model also carries the float checkpoint)",
    ]
    where = [f"registered as models:/{result.name}/{result.version}"] if result.version else []
    where += [f"files in {result.folder}"] if result.kept else []
    return [*lines, *(f"  {line}" for line in where or ["not registered, no files kept (--out)"])]


def _change(loss: float) -> str:
    if abs(loss) < 5e-5:
        return "no change"
    return f"{abs(loss):.2%} {'worse' if loss > 0 else 'better'}"
