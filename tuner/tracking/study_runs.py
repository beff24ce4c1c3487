"""The MLflow record of a running study: one experiment and one parent run per study, a
nested run per trial, and each new best trial's model as an MLflow Model (a logged model of
its run) registered as a version of the study's model.

Calls go through an explicit `MlflowClient` (no fluent global state, no autolog), so
several trials or workers can record at once.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric, Param, RunTag
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
from tuner.runtime.scratch import scratch_folder
from tuner.tracking import pyfunc_model
from tuner.tracking.model_registry import LoggedBest, StudyModel, requirements
from tuner.tracking.store import (
    CHECKPOINT_DIR,
    SHARED_VIEW_TAG,
    VIEW_KEY,
    TrackingStore,
    now_ms,
)

NOTE_TAG = "mlflow.note.content"  # the run's description in the MLflow UI
RUN_NAME_TAG = "mlflow.runName"  # setting it renames the run
RESUME_FOLDER = "resume"  # a running trial's resume checkpoint, in its run's artifacts
RUN_STATUS = {
    "FAIL": "FAILED",
    "INTERRUPTED": "KILLED",
    "LOST": "KILLED",
    "PREEMPTED": "KILLED",
}  # trial state -> MLflow run status


def _param_text(value: Any) -> str:
    return mask_secrets(str(value))[:6000]


class StudyTracker:
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
        """Record the best trial and the trials table on the parent run, then close it."""
        metrics = [
            Metric(k, float(v), now_ms(), 0)
            for k, v in summary.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
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

    def log_history(
        self,
        run_id: str,
        rows: list[tuple[Mapping[str, float], int]],
        model_id: str | None = None,
        earlier: Mapping[str, Metric] | None = None,
    ) -> dict[str, Metric]:
        """Several steps of metrics in as few store writes as MLflow allows; returns the
        latest point of each name sent. With `model_id`, each name's latest point (of `rows`,
        else of `earlier`: what was sent before) is linked to that logged model too (MLflow
        3's model page). A point sent before goes again, linked, with its own step and
        timestamp: the run's table holds that entry already and skips it (a new point would
        show the final value as one more epoch)."""
        stamp = now_ms()
        points = [
            Metric(k, float(v), stamp, step) for values, step in rows for k, v in values.items()
        ]
        latest = {m.key: m for m in points}  # rows come in step order
        if model_id is not None:
            last = {id(m) for m in latest.values()}
            points = [m for m in points if id(m) not in last] + [
                Metric(m.key, m.value, m.timestamp, m.step, model_id=model_id)
                for m in {**(earlier or {}), **latest}.values()
            ]
        for start in range(0, len(points), 1000):  # MLflow takes at most 1000 per log_batch
            self.client.log_batch(run_id, metrics=points[start : start + 1000])
        return latest

    def end_trial(self, run_id: str, number: int, state: str, details: Mapping[str, Any]) -> None:
        """Close a trial's run with its final state (COMPLETE / PRUNED / FAIL) and why."""
        tags = [
            RunTag(STATE_TAG, state),
            RunTag(RUN_NAME_TAG, f"trial-{number} {state.lower()}"),  # renames the run
            *(RunTag(f"{TAG}{k}", mask_secrets(str(v))[:5000]) for k, v in details.items()),
        ]
        self.client.log_batch(run_id, tags=tags)
        self.client.set_terminated(run_id, status=RUN_STATUS.get(state, "FINISHED"))

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

    def log_text(self, run_id: str, text: str, name: str) -> None:
        self.client.log_text(run_id, mask_secrets(text), name)

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

    def keep_weights(self, run_id: str, checkpoint: Path) -> str:
        """A trial's checkpoint as a file of its run (where `runs:/<id>` sources find one);
        returns its URI."""
        self.client.log_artifact(run_id, str(checkpoint), CHECKPOINT_DIR)
        return f"runs:/{run_id}/{CHECKPOINT_DIR}/{checkpoint.name}"

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

    def log_best_model(
        self,
        model_id: str,
        run_id: str,
        number: int,
        rank: tuple[float, float],
        task: Any,
        checkpoint: Path,
        example: pd.DataFrame | None,
        params: dict[str, Any],
        rows: str = "",
    ) -> LoggedBest:
        """Log a trial's checkpoint as an MLflow Model into its logged model (new_model) and
        register it as a new version of the study's model, its rank scored on `rows` (the
        caller then moves the `best` alias, under the stores' lock)."""
        folder = scratch_folder("tuner-model-") / "model"
        try:
            pyfunc_model.save(
                folder, task, checkpoint, example, params, model_id, run_id, requirements()
            )
            self.client.log_model_artifacts(model_id, str(folder))
        except BaseException:
            self.client.finalize_logged_model(model_id, LoggedModelStatus.FAILED)
            raise
        finally:
            shutil.rmtree(folder.parent, ignore_errors=True)
        self.client.finalize_logged_model(model_id, LoggedModelStatus.READY)
        self.client.log_outputs(run_id, [LoggedModelOutput(model_id, 0)])
        version = self.registry.register(run_id, model_id, number, rank, rows)
        return LoggedBest(f"models:/{model_id}", model_id, version)
