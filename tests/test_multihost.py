"""Hosts that share no disk: each simulated host runs in its own mount namespace with a
private tmpfs over the test's folder (where the server keeps the artifacts, and its own
working folder), so whatever it writes locally no other host
sees. They share only what a team shares: the PostgreSQL server and one `mlflow server`
(PostgreSQL backend, artifacts served by it)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from tests.conftest import REPO, TINY_SPACE, MlflowServer, tables, wait_for
from tuner.config.trial_attrs import of as attrs_of

STUDY = "team"


def _can_unshare() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "mount", "-t", "tmpfs", "none", "/mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(
    not _can_unshare(),
    reason="needs root and `unshare -m`: each simulated host gets its own disk (CI runs as root)",
)


def _host(root: Path, *argv: str, space: str = TINY_SPACE) -> subprocess.Popen:
    """`tuner ARGV` on a host of its own: a fresh, private tmpfs over `root` (the test's
    folder: the server's artifacts disappear from view) as its only disk."""
    tuner = shlex.join([sys.executable, "-m", "tuner.cli", *argv])
    script = (
        f"mount -t tmpfs none {shlex.quote(str(root))} && cd {shlex.quote(str(root))} && "
        f'printf %s "$TINY_SPACE" > tiny.yaml && exec {tuner}'
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "TINY_SPACE": space}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _on_a_host(root: Path, *argv: str, space: str = TINY_SPACE) -> str:
    process = _host(root, *argv, space=space)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    return output


@pytest.fixture
def team_server(tmp_path, postgres_urls):
    """The team's shared services: Optuna's database, and an MLflow server on PostgreSQL."""
    storage, backend = postgres_urls
    server = MlflowServer(tmp_path / "server", backend)
    server.start()
    yield storage, server
    server.stop()


@needs_namespaces
def test_a_trial_killed_on_one_host_resumes_on_another_from_the_server(team_server, tmp_path):
    """The resume checkpoint is in the trial's run on the MLflow server: a host that never
    saw the first host's disk continues the trial from it."""
    storage, server = team_server
    slow = TINY_SPACE.replace("max_epochs: 2", "max_epochs: 40")
    argv = ["search", "--task", "forecasting", "--space", "tiny.yaml", "--study", STUDY,
            "--trials", "1", "--pruner", "none", "--storage", storage, "--tracking-uri",
            server.url, "--set", "hidden_size=256", "--set", "num_layers=3",
            "--set", "checkpoint_every=2"]  # fmt: skip
    first = _host(tmp_path, *argv, space=slow)
    client = MlflowClient(server.url)

    def published() -> bool:
        experiment = client.get_experiment_by_name(STUDY)
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        return any(client.list_artifacts(r.info.run_id, "resume") for r in runs)

    assert wait_for(published, timeout=300), first.communicate()
    first.kill()  # SIGKILL: the host is gone, and its disk with it
    first.communicate()
    _on_a_host(tmp_path, *argv, space=slow)
    study = optuna.load_study(study_name=STUDY, storage=storage)
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]
    retry = study.trials[1]
    resumed = attrs_of(retry)["resumed_from"]
    assert resumed["trial"] == 0 and (resumed["epoch"] + 1) % 2 == 0
    assert attrs_of(retry)["epochs"] == 40
    assert not published()  # the trial ended: its chain's checkpoints went, on the server too


def test_a_database_tracking_uri_needs_an_artifact_root_every_host_reads(workdir, postgres_urls):
    """Without --artifact-root each host would log models to its own ./mlruns: refused before
    anything is created, with the fix named; with one, the models land there."""
    storage, tracking = postgres_urls
    (workdir / "tiny.yaml").write_text(TINY_SPACE)
    search = ["search", "--task", "forecasting", "--space", "tiny.yaml", "--trials", "1"]
    stores = ["--storage", storage, "--tracking-uri", tracking]
    refused = subprocess.run(
        [sys.executable, "-m", "tuner.cli", *search, *stores],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "--artifact-root" in refused.stderr and "mlflow server" in refused.stderr
    assert not (workdir / "mlruns").exists()
    assert tables(storage) == [] and tables(tracking) == []

    shared = workdir / "shared"
    from tuner.cli import main

    assert main([*search, *stores, "--artifact-root", str(shared), "--quiet"]) == 0
    assert list(shared.rglob("*.ckpt")) and not (workdir / "mlruns" / "artifacts").exists()


def test_an_experiment_with_a_host_local_location_is_refused(workdir, postgres_urls, capsys):
    """An experiment made by an older version (artifacts in the host's ./mlruns) would keep
    stranding models: refused with the fix, nothing added to it."""
    storage, tracking = postgres_urls
    client = MlflowClient(tracking)
    client.create_experiment("old", artifact_location=(workdir / "mlruns").as_uri())
    (workdir / "tiny.yaml").write_text(TINY_SPACE)
    from tuner.cli import main

    argv = ["search", "--task", "forecasting", "--space", "tiny.yaml", "--study", "old"]
    code = main([*argv, "--trials", "1", "--storage", storage, "--tracking-uri", tracking,
                 "--artifact-root", str(workdir / "shared")])  # fmt: skip
    error = capsys.readouterr().err
    assert code == 2 and "disk of the host that made it" in error and "rename" in error
    experiment = client.get_experiment_by_name("old")
    assert client.search_runs([experiment.experiment_id]) == []
    assert tables(storage) == []


def _set_up_together(storage: str, tracking: str, start: float) -> str:
    """What each host does first, from one instant on: make the study and its parent run."""
    import time

    from tuner.storage.databases import store_lock
    from tuner.storage.studies import open_storage
    from tuner.tracking import StudyTracker

    while time.time() < start:
        pass
    try:
        with store_lock(storage, tracking):
            optuna.create_study(
                study_name=STUDY, storage=open_storage(storage), load_if_exists=True
            )
            StudyTracker(tracking, STUDY, "file:///unused").open_study({}, {})
        return "ok"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:200]


def test_processes_setting_up_a_fresh_database_at_one_instant_all_succeed(postgres_urls):
    """Without the advisory lock 10 of 15 such processes failed on PostgreSQL's
    `pg_type_typname_nsp_index` (Optuna's tables); the CLI hosts above are staggered by
    their checks, so this starts them at the same instant."""
    import multiprocessing
    import time

    storage, tracking = postgres_urls
    with multiprocessing.get_context("fork").Pool(3) as pool:
        outcomes = pool.starmap(_set_up_together, [(storage, tracking, time.time() + 2)] * 3)
    assert outcomes == ["ok", "ok", "ok"]
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(STUDY)
    assert len(client.search_runs([experiment.experiment_id])) == 1
    assert len(optuna.get_all_study_names(storage)) == 1
