"""The MLflow record of a running study: one experiment and one parent run per study, a
nested run per trial, and each new best trial's model as an MLflow Model (a logged model of
its run) registered as a version of the study's model.

Calls go through an explicit `MlflowClient` (no fluent global state, no autolog), so
several trials or workers can record at once.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from tuner.config.keys import (
    DEVICE_TAG,
    ROLE_TAG,
    STATE_TAG,
    STUDY_TAG,
    TAG,
    TRIAL_TAG,
)
from tuner.config.names import path_part
from tuner.errors import mask_secrets
from tuner.tracking.model_registry import StudyModel
from tuner.tracking.store import (
    SHARED_VIEW_TAG,
    VIEW_KEY,
    TrackingStore,
    now_ms,
)
from tuner.tracking.trial_records import TrialRecords

NOTE_TAG = "mlflow.note.content"  # the run's description in the MLflow UI
RESUME_FOLDER = "resume"  # a running trial's resume checkpoint, in its run's artifacts


def _param_text(value: Any) -> str:
    return mask_secrets(str(value))[:6000]


class StudyTracker(TrialRecords):
    """The MLflow record of one study."""

    def __init__(
        self,
        tracking_uri: str,
        study_name: str,
        artifact_root: str | None = None,
        model_name: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """`tags` (e.g. a fine-tune's lineage) go on the parent run, every trial run and
        every registered version; `model_name` defaults to the study name."""
        self.store = TrackingStore(tracking_uri)
        self.client: MlflowClient = self.store.client
        self.tracking_uri = tracking_uri
        self.study_name = study_name
        self.artifact_root = artifact_root
        self.model_name = model_name or study_name
        self.tags = dict(tags or {})
        self.experiment_id = ""
        self.parent_run_id = ""
        self.registry = StudyModel(
            self.client, tracking_uri, self.model_name, study_name, self.tags
        )

    # ------------------------------------------------------------ study level

    def open_study(self, params: Mapping[str, Any], tags: Mapping[str, str]) -> str:
        """Find or create the experiment and the study's ONE parent run (reused on resume)."""
        self.experiment_id = self._experiment_id()
        # the study name is compared here, not in the filter: no name ever enters a query
        wanted = f"tags.`{ROLE_TAG}` = 'study'"
        runs = self.client.search_runs([self.experiment_id], filter_string=wanted)
        runs = [run for run in runs if run.data.tags.get(STUDY_TAG) == self.study_name]
        if runs:
            self.parent_run_id = runs[0].info.run_id
            self.client.update_run(self.parent_run_id, status="RUNNING")
            return self.parent_run_id
        run = self.client.create_run(
            self.experiment_id,
            run_name=self.study_name,
            tags={
                ROLE_TAG: "study",
                STUDY_TAG: self.study_name,
                **{k: mask_secrets(v) for k, v in tags.items()},
                **self.tags,
            },
        )
        self.parent_run_id = run.info.run_id
        self.client.log_batch(
            self.parent_run_id, params=[Param(k, _param_text(v)) for k, v in params.items()]
        )
        return self.parent_run_id

    def start_ensemble(
        self, parent_run_id: str, members: list[int], tags: Mapping[str, str]
    ) -> str:
        """A run for a top-k ensemble of the study's trials, beside its trial runs (under
        its parent run, which stays as it is)."""
        experiment = self.client.get_experiment_by_name(self.study_name)
        if experiment is None:
            raise KeyError(self.study_name)
        self.experiment_id, self.parent_run_id = experiment.experiment_id, parent_run_id
        names = ", ".join(map(str, members))
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"ensemble of trials {names}",
            tags={
                "mlflow.parentRunId": parent_run_id,
                ROLE_TAG: "ensemble",
                STUDY_TAG: self.study_name,
                TRIAL_TAG: f"ensemble {names}",
                **tags,
            },
        )
        return run.info.run_id

    def set_runs_view(self, metric: str, params: list[str]) -> None:
        """A shared view of the runs table that shows what matters as columns (the trial's
        value `best_<metric>`: its best epoch's metric, or the mean over its folds, where
        `<metric>` itself ends on the last epoch logged; its test counterpart, the searched
        params, the trial state): MLflow hides metric and param columns by default. `tuner
        ui` opens it (?viewStateShareKey=tuner)."""
        test_metric = "test_" + metric.removeprefix("val_")
        columns = [
            f"metrics.`best_{metric}`",
            f"metrics.`{test_metric}`",
            *(f"params.`{name}`" for name in params),
            f"tags.`{STATE_TAG}`",
        ]
        view = {
            "selectedColumns": columns,
            "orderByKey": "attributes.start_time",
            "orderByAsc": False,
        }
        self.client.set_experiment_tag(
            self.experiment_id, f"{SHARED_VIEW_TAG}{VIEW_KEY}", json.dumps(view)
        )

    def _experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(self.study_name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                self.client.restore_experiment(experiment.experiment_id)
            return experiment.experiment_id
        folder = path_part(self.study_name)
        location = f"{self.artifact_root}/{folder}" if self.artifact_root else None
        try:
            return self.client.create_experiment(self.study_name, artifact_location=location)
        except MlflowException:  # created by another worker meanwhile
            return self.client.get_experiment_by_name(self.study_name).experiment_id

    def describe(self, text: str) -> None:
        """The parent run's description (markdown) in the MLflow UI."""
        self.client.set_tag(self.parent_run_id, NOTE_TAG, mask_secrets(text))

    def close_study(
        self, summary: Mapping[str, Any], files: list[Path], status: str = "FINISHED"
    ) -> None:
        """Record the best trial and the trials table on the parent run, then close it. A
        figure the run holds already is not sent again (a resume or a worker's close would
        add the same value as one more point)."""
        held = self.client.get_run(self.parent_run_id).data.metrics
        metrics = [
            Metric(k, float(v), now_ms(), 0)
            for k, v in summary.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and held.get(k) != float(v)
        ]
        tags = [RunTag(f"{TAG}{k}", str(v)) for k, v in summary.items()]
        self.client.log_batch(self.parent_run_id, metrics=metrics, tags=tags)
        for path in files:
            self.client.log_artifact(self.parent_run_id, str(path))
        self.client.set_terminated(self.parent_run_id, status=status)

    # ------------------------------------------------------------ trial level

    def start_trial(self, number: int, params: Mapping[str, Any], device: str) -> str:
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"trial-{number}",
            tags={
                "mlflow.parentRunId": self.parent_run_id,
                ROLE_TAG: "trial",
                STUDY_TAG: self.study_name,
                TRIAL_TAG: str(number),
                STATE_TAG: "RUNNING",
                DEVICE_TAG: device,
                **self.tags,
            },
        )
        self.client.log_batch(
            run.info.run_id, params=[Param(k, _param_text(v)) for k, v in params.items()]
        )
        return run.info.run_id

    def close_orphan_runs(self, states: Mapping[int, str]) -> int:
        """Trial runs left RUNNING by a process that stopped before closing them (a second
        Ctrl-C, a store that was down) are closed with the state Optuna recorded for their
        trial; runs of trials still running are left alone. Returns how many."""
        runs = self.client.search_runs(
            [self.experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
        )
        closed = 0
        for run in runs:
            tags = run.data.tags
            number = int(tags.get(TRIAL_TAG, -1)) if tags.get(ROLE_TAG) == "trial" else -1
            state = states.get(number)
            if state in (None, "RUNNING", "WAITING"):
                continue
            note = {"closed_by": "a later run: its process stopped before closing it"}
            self.end_trial(run.info.run_id, number, state, note)
            closed += 1
        return closed

    def tag_run(self, run_id: str, tags: Mapping[str, str]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, mask_secrets(v)) for k, v in tags.items()])

    def publish_resume(self, run_id: str, path: Path) -> None:
        """A running trial's resume checkpoint, where every host reads it (the run's
        artifacts; replaced at each save)."""
        self.client.log_artifact(run_id, str(path), RESUME_FOLDER)

    def fetch_resume(self, run_id: str, path: Path) -> bool:
        """The resume checkpoint an earlier attempt published, into `path`; False if none."""
        names = {Path(f.path).name for f in self.client.list_artifacts(run_id, RESUME_FOLDER)}
        if path.name not in names:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as folder:
            got = self.client.download_artifacts(run_id, f"{RESUME_FOLDER}/{path.name}", folder)
            os.replace(got, path)
        return True

    def drop_resume(self, run_ids: list[str]) -> None:
        """The trial ended for good: its chain's published resume checkpoints go (they are
        working state, not records). Best effort: an artifact store that cannot delete
        keeps them, and nothing else depends on it."""
        for run_id in run_ids:
            try:
                uri = self.client.get_run(run_id).info.artifact_uri
                repo = get_artifact_repository(uri, tracking_uri=self.tracking_uri)
                repo.delete_artifacts(RESUME_FOLDER)
            except (MlflowException, NotImplementedError, OSError):
                continue

    def move_best_alias(self, version: str, rank: tuple[float, float], rows: str = "") -> bool:
        return self.registry.move_best_alias(version, rank, rows)

    # ------------------------------------------------------------ checkpoints and models

    def new_model(self, run_id: str, number: int) -> str:
        """A logged model of the trial's run, to link its metrics to and log its files into
        (log_best_model); returns its id."""
        return self.client.create_logged_model(
            self.experiment_id,
            name=f"trial-{number}",
            source_run_id=run_id,
            tags={STUDY_TAG: self.study_name, TRIAL_TAG: str(number)},
            model_type="lstm-tuner",
        ).model_id
