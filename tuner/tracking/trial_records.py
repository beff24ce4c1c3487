"""A trial's durable records in MLflow (its curve, its closing state, a traceback, kept
weights, its model logged, registered and aliased), written directly or, during a sweep,
queued on local disk for the writer process (tuner.tracking.writer).

Each record is one of the `_<name>` writes below, given data only; queued, it is an entry of
the journal, whose files it reads from the entry's folder. Every write can be made again
with the same result (MLflow keeps an identical metric point once, a version is looked up
before it is registered), so a record replayed after a crash is never written twice."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric, RunTag

from tuner.config.keys import STATE_TAG, TAG, model_version_key
from tuner.errors import mask_secrets
from tuner.runtime.scratch import scratch_folder
from tuner.tracking import pyfunc_model
from tuner.tracking.model_registry import LoggedBest, requirements
from tuner.tracking.store import CHECKPOINT_DIR, now_ms

RUN_NAME_TAG = "mlflow.runName"  # setting it renames the run
RUN_STATUS = {
    "FAIL": "FAILED",
    "INTERRUPTED": "KILLED",
    "LOST": "KILLED",
    "PREEMPTED": "KILLED",
}  # trial state -> MLflow run status


class TrialRecords:
    """The part of StudyTracker that writes a trial's records (it brings `client`,
    `registry`, `study_name` and `model_name`)."""

    queue: Any = None  # a sweep's (tracking.writer.Queue): records go to the writer
    lock: Callable[[], AbstractContextManager[None]] = nullcontext  # the stores' lock
    version_store: Callable[[str, str], None] | None = None  # (key, version) -> Optuna

    def _record(self, op: str, files: Mapping[str, Path] | None = None, **args: Any) -> Any:
        """Queue the write `op` (its files move into the entry; returns None), or make it
        now (returns what it returns)."""
        if self.queue is not None:
            self.queue.put([{"op": op, **args}], files)
            return None
        if not files:  # nothing to hand over: no folder to make
            return getattr(self, f"_{op}")(entry=None, **args)
        entry = scratch_folder("tuner-record-")
        try:
            for name, path in (files or {}).items():
                shutil.move(str(path), entry / name)
            return getattr(self, f"_{op}")(entry=entry, **args)
        finally:
            shutil.rmtree(entry, ignore_errors=True)

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
        if points:
            rows_out = [[m.key, m.value, m.timestamp, m.step, m.model_id] for m in points]
            self._record("log_metrics", run_id=run_id, points=rows_out)
        return latest

    def _log_metrics(self, entry: Path | None, run_id: str, points: list[list[Any]]) -> None:
        metrics = [
            Metric(k, v, stamp, step, model_id=model) for k, v, stamp, step, model in points
        ]
        for start in range(0, len(metrics), 1000):  # MLflow takes at most 1000 per log_batch
            self.client.log_batch(run_id, metrics=metrics[start : start + 1000])

    def end_trial(self, run_id: str, number: int, state: str, details: Mapping[str, Any]) -> None:
        """Close a trial's run with its final state (COMPLETE / PRUNED / FAIL) and why."""
        shown = {k: mask_secrets(str(v))[:5000] for k, v in details.items()}
        self._record("end_trial", run_id=run_id, number=number, state=state, details=shown)

    def _end_trial(
        self, entry: Path | None, run_id: str, number: int, state: str, details: dict[str, str]
    ) -> None:
        tags = [
            RunTag(STATE_TAG, state),
            RunTag(RUN_NAME_TAG, f"trial-{number} {state.lower()}"),  # renames the run
            *(RunTag(f"{TAG}{k}", v) for k, v in details.items()),
        ]
        self.client.log_batch(run_id, tags=tags)
        self.client.set_terminated(run_id, status=RUN_STATUS.get(state, "FINISHED"))

    def log_text(self, run_id: str, text: str, name: str) -> None:
        self._record("log_text", run_id=run_id, text=mask_secrets(text), name=name)

    def _log_text(self, entry: Path | None, run_id: str, text: str, name: str) -> None:
        self.client.log_text(run_id, text, name)

    def keep_weights(self, run_id: str, checkpoint: Path) -> str:
        """A trial's checkpoint as a file of its run (where `runs:/<id>` sources find one);
        returns its URI."""
        self._record("keep_weights", {checkpoint.name: checkpoint}, run_id=run_id,
                     file=checkpoint.name)  # fmt: skip
        return f"runs:/{run_id}/{CHECKPOINT_DIR}/{checkpoint.name}"

    def _keep_weights(self, entry: Path, run_id: str, file: str) -> None:
        self.client.log_artifact(run_id, str(entry / Path(file).name), CHECKPOINT_DIR)

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
        promote: bool = False,
    ) -> LoggedBest:
        """A trial's checkpoint as an MLflow Model (written here, where the task's code is)
        into its logged model (new_model), registered as a new version of the study's model,
        its rank scored on `rows`; with `promote`, `best` moves to it where it ranks better
        than the version holding it. Queued, the version is "" (the writer records it)."""
        folder = scratch_folder("tuner-model-") / "model"
        try:
            pyfunc_model.save(
                folder, task, checkpoint, example, params, model_id, run_id, requirements()
            )
        except BaseException:
            self.client.finalize_logged_model(model_id, LoggedModelStatus.FAILED)
            shutil.rmtree(folder.parent, ignore_errors=True)
            raise
        version = self._record("publish_model", {"model": folder}, model_id=model_id,
                               run_id=run_id, number=number, rank=list(rank), rows=rows,
                               promote=promote)  # fmt: skip
        shutil.rmtree(folder.parent, ignore_errors=True)
        return LoggedBest(f"models:/{model_id}", model_id, version or "")

    def _publish_model(
        self, entry: Path, model_id: str, run_id: str, number: int, rank: list[float],
        rows: str, promote: bool,
    ) -> str:  # fmt: skip
        """Upload the model folder, mark it ready, link it to its run, register it (once),
        move `best` where it ranks better, and record its version; returns it."""
        self.client.log_model_artifacts(model_id, str(entry / "model"))
        self.client.finalize_logged_model(model_id, LoggedModelStatus.READY)
        if model_id not in {o.model_id for o in self.client.get_run(run_id).outputs.model_outputs}:
            self.client.log_outputs(run_id, [LoggedModelOutput(model_id, 0)])
        version = self.registry.register(run_id, model_id, number, (rank[0], rank[1]), rows)
        if promote:
            with self.lock():
                self.registry.move_best_alias(version, (rank[0], rank[1]), rows)
        if self.version_store is not None:
            self.version_store(model_version_key(number), version)
        return version
