"""Reading an MLflow tracking store, and the few writes made outside a running study
(closing a lost trial's run, before / after metrics, a report): the one place outside
StudyTracker that talks to MLflow. The client is made on first use, since making it makes
a local SQLite store: only once every input has been checked."""

from __future__ import annotations

import time
from functools import cached_property
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from tuner.config import keys
from tuner.runtime.scratch import scratch_folder

CHECKPOINT_DIR = "checkpoint"  # a kept trial's checkpoint file in its run (and older best runs)
SHARED_VIEW_TAG = "mlflow.sharedViewState."  # read by the MLflow 3 UI's runs table
VIEW_KEY = "tuner"


def now_ms() -> int:
    """A metric's timestamp, as MLflow keeps it."""
    return int(time.time() * 1000)


class TrackingStore:
    """One MLflow tracking store, by URI."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    @cached_property
    def client(self) -> MlflowClient:
        return MlflowClient(self.uri)

    def answers(self) -> None:
        """Raise whatever MLflow raises when the store cannot be read."""
        self.client.search_experiments(max_results=1)

    # ------------------------------------------------------------ runs

    def run_tags(self, run_id: str) -> dict[str, str] | None:
        """The run's tags, or None when the store holds no such run."""
        try:
            return dict(self.client.get_run(run_id).data.tags)
        except MlflowException:
            return None

    def download_checkpoint(self, run_id: str) -> Path | None:
        """The run's logged checkpoint, downloaded to a fresh folder; None if it has none."""
        files = [f.path for f in self.client.list_artifacts(run_id, CHECKPOINT_DIR)]
        checkpoints = [name for name in files if name.endswith(".ckpt")]
        if not checkpoints:
            return None
        folder = scratch_folder("tuner-src-")
        return Path(self.client.download_artifacts(run_id, checkpoints[0], folder))

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """(step, value) of one metric of a run, in step order."""
        history = self.client.get_metric_history(run_id, key)
        return sorted((m.step, m.value) for m in history)

    def log_metrics(self, run_id: str, metrics: dict[str, float]) -> None:
        """One store write, at step 0."""
        stamp = now_ms()
        points = [Metric(key, float(value), stamp, 0) for key, value in metrics.items()]
        self.client.log_batch(run_id, metrics=points)

    def log_artifacts(self, run_id: str, folder: Path, path: str) -> None:
        self.client.log_artifacts(run_id, str(folder), path)

    def close_lost_run(self, run_id: str, number: int) -> None:
        """The run of a trial whose worker died: closed as KILLED by whoever noticed."""
        self.client.set_tag(run_id, keys.STATE_TAG, "LOST")
        self.client.set_tag(
            run_id, f"{keys.TAG}{keys.FAIL_REASON}", "its worker stopped sending heartbeats"
        )
        self.client.update_run(run_id, name=f"trial-{number} lost")
        self.client.set_terminated(run_id, status="KILLED")

    # ------------------------------------------------------------ registry, experiments

    def model_version(
        self, name: str, version: str = "", alias: str = ""
    ) -> tuple[str, str, str | None]:
        """(version, run id, logged model id or None for a version registered before models
        were MLflow Models) of a registered model's version or alias; KeyError if none."""
        try:
            if alias:
                found = self.client.get_model_version_by_alias(name, alias)
            else:
                found = self.client.get_model_version(name, version)
        except MlflowException:
            raise KeyError(name) from None
        model_id = getattr(found, "model_id", None)
        if not model_id and str(found.source).startswith("models:/m-"):
            model_id = str(found.source)[len("models:/") :]
        return str(found.version), found.run_id, model_id

    def model_of_run(self, run_id: str) -> str | None:
        """The logged model a run produced (a study's best trial), or None."""
        run = self.client.get_run(run_id)
        models = self.client.search_logged_models(
            [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
        )
        return models[0].model_id if models else None

    def download_model(self, model_id: str) -> Path:
        """A logged model's folder (MLmodel, data/), downloaded to a fresh folder."""
        from mlflow.artifacts import download_artifacts

        # by its artifact location: MLflow resolves a models:/<id> URI through the global
        # tracking URI, not the one given here
        location = self.client.get_logged_model(model_id).artifact_location
        folder = scratch_folder("tuner-model-")
        return Path(download_artifacts(location, dst_path=folder, tracking_uri=self.uri))

    def artifact_location(self, name: str) -> str | None:
        """Where the experiment of that name keeps its artifacts; None if there is none."""
        found = self.client.get_experiment_by_name(name)
        return found.artifact_location if found else None

    def experiment(self, name: str | None) -> tuple[str, dict[str, Any]] | None:
        """(id, tags) of the experiment of that name, or of the latest one; None if none."""
        if name:
            found = self.client.get_experiment_by_name(name)
        else:
            latest = self.client.search_experiments(order_by=["creation_time DESC"], max_results=1)
            found = latest[0] if latest else None
        return (found.experiment_id, dict(found.tags)) if found else None
