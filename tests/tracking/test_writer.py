"""The writer beside a sweep (tuner.tracking.writer): records queued on disk reach MLflow
once each, whatever stops the sweep. The sweeps here are real `tuner search` processes; the
writer is a process of their own, paused (SIGSTOP) or starved of its store where a test
needs records still queued."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import optuna
from mlflow import MlflowClient

from tests.conftest import REPO, TINY_SPACE, wait_for
from tuner.cli import main
from tuner.config import keys
from tuner.config.trial_attrs import of as attrs_of
from tuner.storage.locations import default_tracking_uri, resolve_storage
from tuner.study._summary import model_version

SPACE = TINY_SPACE.replace("max_epochs: 2", "max_epochs: 4").replace("keep_top: 0", "keep_top: 3")
SWEEP = ["search", "--task", "forecasting", "--space", "space.yaml", "--study", "w",
         "--pruner", "none", "--quiet"]  # fmt: skip


def _sweep(workdir: Path, trials: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TUNER_WRITER_AFTER_S": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-m", "tuner.cli", *SWEEP, "--trials", str(trials), *extra]
    return subprocess.Popen(command, cwd=workdir, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _writer_of(sweep: subprocess.Popen) -> int | None:
    found = subprocess.run(["pgrep", "-P", str(sweep.pid), "-f", "tuner.tracking.writer"],
                           capture_output=True, text=True)  # fmt: skip
    return int(found.stdout.split()[0]) if found.stdout.strip() else None


def _finished(storage: str, states=("COMPLETE",)) -> int:
    try:
        study = optuna.load_study(study_name="w", storage=storage)
    except Exception:  # KeyError, or no database yet
        return 0
    return sum(t.state.name in states for t in study.trials)


def _queued(workdir: Path) -> list[Path]:
    folder = workdir / "mlruns" / "journal" / "w"
    return [p for p in folder.iterdir() if not p.name.startswith(".")] if folder.is_dir() else []


def _assert_written_once(tracking_uri: str, storage: str) -> None:
    """Every trial's run closed with its whole curve, one model version per model a trial
    logged, `best` on the best trial's version, the study's run finished, nothing queued."""
    study = optuna.load_study(study_name="w", storage=storage)
    assert "RUNNING" not in [t.state.name for t in study.trials]
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("w")
    runs = {
        r.data.tags.get(keys.TRIAL_TAG): r for r in client.search_runs([experiment.experiment_id])
    }
    assert all(r.info.status != "RUNNING" for r in runs.values())
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    for trial in complete:
        curve = client.get_metric_history(attrs_of(trial)[keys.RUN_ID], "val_mae")
        assert sorted(m.step for m in curve) == list(range(4)), (trial.number, curve)
    versions = client.search_model_versions("name='w'")
    logged = [t for t in complete if keys.MODEL_ID in attrs_of(t)]
    assert sorted(v.source.removeprefix("models:/") for v in versions) == sorted(
        attrs_of(t)[keys.MODEL_ID] for t in logged
    )
    best = min(complete, key=lambda t: t.value)
    assert str(client.get_model_version_by_alias("w", "best").version) == model_version(
        study, best
    )
    parent = client.get_run(study.user_attrs[keys.PARENT_RUN_ID])
    assert parent.info.status == "FINISHED"


def test_a_sweep_killed_with_records_queued_is_settled_by_the_rerun(workdir, capsys):
    """The writer paused, two trials end (their records queued on disk), then the sweep and
    its writer are SIGKILLed: the study is not reported finished, and the rerun writes every
    queued record once before it runs the rest."""
    (workdir / "space.yaml").write_text(SPACE)
    storage = resolve_storage(None)
    sweep = _sweep(workdir, 4)
    assert wait_for(lambda: _writer_of(sweep) is not None, 120), sweep.communicate()
    os.kill(_writer_of(sweep), signal.SIGSTOP)
    assert wait_for(lambda: _finished(storage) >= 2, 240), sweep.communicate()
    queued = _queued(workdir)
    os.killpg(sweep.pid, signal.SIGKILL)
    sweep.communicate()
    assert len(queued) >= 2  # at least the two trials' closing records
    client = MlflowClient(default_tracking_uri())
    parent = client.search_runs([client.get_experiment_by_name("w").experiment_id],
                                filter_string="tags.`tuner.role` = 'study'")[0]  # fmt: skip
    assert parent.info.status == "RUNNING"  # not reported finished
    capsys.readouterr()
    assert main(["best", "--study", "w"]) == 0  # the best's version is queued: said so
    study = optuna.load_study(study_name="w", storage=storage)
    if model_version(study, study.best_trial) is None:  # the writer stopped before it
        assert "not registered yet: its records are queued" in capsys.readouterr().out

    loud = [arg for arg in SWEEP if arg != "--quiet"]  # its notes shown
    assert main([*loud, "--trials", "4", "--heartbeat", "1"]) == 0
    said = re.search(
        r"wrote (\d+) record\(s\) an earlier run left queued", capsys.readouterr().out
    )
    assert said and int(said[1]) >= len(queued)  # the rerun says what it settled
    assert not (workdir / "mlruns" / "journal" / "w").exists()  # nothing left, nor signals
    _assert_written_once(default_tracking_uri(), storage)


def _read_only(database_url: str, on: bool) -> None:
    """The database made read-only (as after a fail-over to a replica), or writable again;
    its open sessions end, so the next write of every process meets the change."""
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        db.execute(
            f"ALTER DATABASE {name} SET default_transaction_read_only = {'on' if on else 'off'}"
        )
        db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))  # fmt: skip


def test_a_tracking_store_made_read_only_mid_sweep_ends_it_in_one_line_and_the_rerun_settles_it(
    workdir, postgres_urls
):
    (workdir / "space.yaml").write_text(SPACE)
    tracking = postgres_urls[1]
    stores = ["--tracking-uri", tracking, "--artifact-root", str(workdir / "artifacts")]
    storage = resolve_storage(None)
    sweep = _sweep(workdir, 30, *stores)
    assert wait_for(lambda: _finished(storage) >= 1, 240), sweep.communicate()
    _read_only(tracking, True)
    _, err = sweep.communicate(timeout=300)
    _read_only(tracking, False)
    assert sweep.returncode == 1, err
    assert err.startswith("error: the sweep stopped: ") and err.count("\n") == 1, err
    assert "read-only" in err, err

    assert main([*SWEEP, "--trials", str(_finished(storage) + 1), *stores]) == 0
    assert _queued(workdir) == []
    _assert_written_once(tracking, storage)


def test_a_server_that_stopped_answering_is_given_up_at_once_and_the_entry_kept(tmp_path):
    """MLflow's client retries a request itself (for minutes by default) before it says the
    server is gone: the writer does not try that again, it stops at the first such entry
    (its reason kept with it, for the sweep's line and the rerun)."""
    from tuner.runtime.journal import Journal
    from tuner.tracking.study_runs import StudyTracker
    from tuner.tracking.writer import write_all

    attempts = []

    class Counted(StudyTracker):
        def _log_metrics(self, **kwargs):
            attempts.append(kwargs["run_id"])
            return super()._log_metrics(**kwargs)

    journal = Journal(tmp_path / "journal")
    for run in ("r1", "r2"):
        journal.put([{"op": "log_metrics", "run_id": run, "points": [["m", 1.0, 0, 0, None]]}])
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    try:
        tracker = Counted(f"http://127.0.0.1:{_closed_port()}", "gone")
        assert write_all(tracker, journal, (os.getpid(),)) is None
    finally:
        del os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    assert attempts == ["r1"]  # once, and not the next entry either
    assert len(journal.entries()) == 2
    assert journal.failures()[0].startswith("the MLflow server stopped answering")


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
