"""A study's best model as an MLflow Model: the `python_function` flavor, whose loader is this
module of the installed package (no pickle in the model folder), around the checkpoint kept
in the model's `data/` folder. A user's own model (tuner.custom) has its module logged in the
model's `code/` folder (MLflow's `code_paths`), and is imported from there only. MLflow's
own clients load it (`mlflow.pyfunc.load_model`, `mlflow models serve`) and predict with the
task's own `predict`: a DataFrame in, the table `tuner predict` writes out.

tuner itself never loads a model folder through pyfunc (that runs the loader module the
folder names): `checkpoint_in` reads the MLmodel file as data and returns the checkpoint,
which the safe loader opens.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from tuner.config.files import load_yaml
from tuner.errors import CheckpointError

LOADER = __name__  # what the MLmodel file names as the flavor's loader_module
MLMODEL = "MLmodel"
CODE = "code"  # MLflow's folder for `code_paths` inside a model folder


class TunerModel:
    """What `mlflow.pyfunc.load_model` returns inside: the restored model and its task."""

    def __init__(self, checkpoint: str, task: Any = None) -> None:
        """A model of a registered task (the checkpoint names it), or of a user's model
        whose code was logged in the model's folder; `task` is given by the process that
        trains it, the only one that may hold a task named by module path."""
        from tuner.contract.checkpoints import load_checkpoint, restore_model
        from tuner.contract.exported import attach, read_manifest
        from tuner.contract.registry import logged_task

        export = Path(checkpoint) if Path(checkpoint).is_dir() else None
        if export is not None:  # an ONNX or int8 export (tuner export): its graphs answer
            checkpoint = str(export / read_manifest(export)["checkpoint"])
        payload = load_checkpoint(checkpoint)
        self.task = task or logged_task(payload["task"], code_folder(Path(checkpoint)))
        self.model = restore_model(payload, self.task)
        if export is not None:
            attach(self.model, export, next(iter(read_manifest(export)["forms"])))
        self.settings = payload["settings"]

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        options = self.task.checked_options(dict(params or {}))
        return self.task.predict(self.model, {"data": frame}, self.settings, options)


def code_folder(checkpoint: Path) -> Path:
    """The `code/` folder of the model folder holding `checkpoint` (where MLflow keeps the
    code logged with the model, and puts on sys.path when it loads it)."""
    for folder in checkpoint.resolve().parents:
        if (folder / MLMODEL).is_file():
            return folder / CODE
    return checkpoint.resolve().parent / CODE


def default_params(task: Any) -> dict[str, Any]:
    """The predict options MLflow clients may pass as `params` (those with a default)."""
    return {s.name: s.default for s in task.spec.predict_options if s.default is not None}


def _load_pyfunc(data_path: str) -> TunerModel:
    """MLflow's entry point for a loader_module flavor: `data_path` is the checkpoint, or
    the folder of an export."""
    return TunerModel(data_path)


def save(
    folder: Path,
    task: Any,
    checkpoint: Path,
    example: pd.DataFrame | None,
    params: dict[str, Any],
    model_id: str,
    run_id: str,
    requirements: list[str],
) -> Path:
    """Write the MLflow Model of a checkpoint into `folder` (with its signature, inferred
    from a prediction on `example`, and that example)."""
    import mlflow.pyfunc
    from mlflow.models import Model, ModelSignature, infer_signature

    signature = None
    if example is not None:
        output = TunerModel(str(checkpoint), task).predict(example, params)
        with warnings.catch_warnings():  # a hint about integer columns, at every new best
            warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer")
            inferred = infer_signature(example, output, params=params or None)
        # no input schema: MLflow would refuse integer values where the example had floats
        # (`y` of a series), and the task checks its input itself, with clearer messages
        signature = ModelSignature(inputs=None, outputs=inferred.outputs, params=inferred.params)
    mlflow.pyfunc.save_model(
        path=str(folder),
        loader_module=LOADER,
        data_path=str(checkpoint),
        mlflow_model=Model(model_id=model_id, run_id=run_id),
        signature=signature,
        input_example=example,
        pip_requirements=requirements,
        code_paths=[str(path) for path in getattr(task, "code", ())] or None,
    )
    return folder


def checkpoint_in(folder: Path, source: str) -> Path:
    """The checkpoint inside a model folder written by `save`, read from its MLmodel file
    as data (nothing in the folder is run)."""
    spec = load_yaml(
        folder / MLMODEL, "MLmodel file", "an lstm-tuner MLflow Model", CheckpointError
    )
    try:
        data = spec["flavors"]["python_function"]["data"]
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{source}: not an lstm-tuner MLflow Model (no {exc})") from None
    path = (folder / str(data)).resolve()
    if path.is_dir() and (path / "export.json").is_file():  # tuner.contract.exported.MANIFEST
        raise CheckpointError(
            f"{source}: an ONNX or int8 export (tuner export); tuner predict runs float "
            f"models: predict from the export's source (its tuner.source tag), or load the "
            f"export with mlflow.pyfunc.load_model or serve it with mlflow models serve"
        )
    if folder.resolve() not in path.parents or not path.is_file():
        raise CheckpointError(f"{source}: its MLmodel names no checkpoint inside the model")
    return path
