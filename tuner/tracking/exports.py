"""An export (tuner.models.export) registered the ecosystem's way: a run beside its source's
with the figures it was checked on and its lineage as tags, and an MLflow Model of its own,
a new version of `<model>-onnx` or `<model>-int8`.

The model is our pyfunc (tuner.tracking.pyfunc_model) over ONNX Runtime, not MLflow's onnx
flavor: that flavor answers tensors in and tensors out, while a user sends the table the
float model takes (a series, a prompt) and expects its table back; the task's predict does
that around the graphs."""

from __future__ import annotations

from importlib.metadata import version as installed
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

from tuner.config import keys
from tuner.runtime.scratch import scratch_folder
from tuner.tracking import pyfunc_model
from tuner.tracking.model_registry import requirements

EXPERIMENT = "exports"  # where an export of a local checkpoint file is recorded
FORM_TAG = f"{keys.TAG}export_form"


def register_export(tracking_uri: str, result: Any, task: Any) -> str:
    """Record `result` (an ExportResult) and register its model; returns the version."""
    client = MlflowClient(tracking_uri)
    tags = _tags(result)
    run = client.create_run(_experiment(client, result.lineage), run_name=result.name, tags=tags)
    run_id = run.info.run_id
    client.log_batch(
        run_id, metrics=[Metric(k, float(v), 0, 0) for k, v in result.figures.items()]
    )
    try:
        version = _logged_and_registered(client, tracking_uri, result, task, run)
    except BaseException:
        client.set_terminated(run_id, "FAILED")  # never left RUNNING
        raise
    client.set_terminated(run_id)
    return version


def _logged_and_registered(
    client: MlflowClient, tracking_uri: str, result: Any, task: Any, run: Any
) -> str:
    run_id, tags = run.info.run_id, _tags(result)
    model_id = client.create_logged_model(  # MLflow refuses dots in a logged model's name
        run.info.experiment_id, name=f"{result.form}-export", source_run_id=run_id,
        tags=tags, model_type="lstm-tuner-export",
    ).model_id  # fmt: skip
    folder = scratch_folder("tuner-export-model-") / "model"
    params = pyfunc_model.default_params(task)
    needs = [*requirements(), _onnxruntime()]
    pyfunc_model.save(folder, task, result.folder, result.example, params, model_id, run_id, needs)
    client.log_model_artifacts(model_id, str(folder))
    client.finalize_logged_model(model_id, LoggedModelStatus.READY)
    client.log_outputs(run_id, [LoggedModelOutput(model_id, 0)])
    return _new_version(client, tracking_uri, result.name, (run_id, model_id), tags)


def _tags(result: Any) -> dict[str, str]:
    """The run's, the logged model's and the version's tags: lineage and form."""
    return {**result.lineage, FORM_TAG: result.form}


def _experiment(client: MlflowClient, lineage: dict[str, str]) -> str:
    """The source run's experiment, or `exports` for a checkpoint file."""
    source_run = lineage.get(f"{keys.TAG}source_run_id")
    if source_run:
        return client.get_run(source_run).info.experiment_id
    found = client.get_experiment_by_name(EXPERIMENT)
    return found.experiment_id if found else client.create_experiment(EXPERIMENT)


def _new_version(
    client: MlflowClient, tracking_uri: str, name: str, ids: tuple[str, str], tags: dict
) -> str:
    run_id, model_id = ids
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    with _use_tracking_uri(tracking_uri):  # as in model_registry: the registry resolves here
        found = client.create_model_version(
            name, source=f"models:/{model_id}", run_id=run_id, model_id=model_id, tags=tags
        )
    return str(found.version)


def _onnxruntime() -> str:
    return f"onnxruntime=={installed('onnxruntime')}"
