"""Several workers on one study: local SQLite, and the real PostgreSQL server when present."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from mlflow import MlflowClient

from tests.conftest import REPO
from tuner.config.trial_attrs import of as attrs_of
from tuner.errors import UsageError
from tuner.reports.ranking import best_trial
from tuner.runtime.devices import KERNEL_CACHE, bound_kernel_cache, plan_workers
from tuner.study._summary import model_version

SPACE = """
metric: val_mae
params:
  hidden_size: {type: int, low: 4, high: 16}
  lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
fixed: {input_len: 12, horizon: 6, max_epochs: 3, folds: 1}
"""


def test_gpu_assignment_one_per_worker_or_packed():
    plans = plan_workers(4, "auto", cpu_count=16, gpu_count=4)
    assert [p.gpu for p in plans] == ["0", "1", "2", "3"]
    assert plans[2].environment()["CUDA_VISIBLE_DEVICES"] == "2" and plans[0].threads == 4
    packed = plan_workers(4, "0,1", trials_per_device=2, cpu_count=8, gpu_count=4)
    assert [p.gpu for p in packed] == ["0", "0", "1", "1"]
    with pytest.raises(UsageError, match="only 2 GPU"):
        plan_workers(3, "0,1", cpu_count=8, gpu_count=4)
    with pytest.raises(UsageError, match="GPU 7 does not exist"):
        plan_workers(1, "7", gpu_count=2)
    with pytest.raises(UsageError, match="no CUDA device"):
        plan_workers(1, "gpu", gpu_count=0)


def test_the_cpu_kernel_cache_is_bounded_unless_the_user_set_it(monkeypatch):
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    bound_kernel_cache()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == KERNEL_CACHE == "64"
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "500")
    bound_kernel_cache()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "500"


def test_cpu_workers_split_the_cores_instead_of_oversubscribing():
    plans = plan_workers(3, "auto", cpu_count=12, gpu_count=0)
    assert [p.threads for p in plans] == [4, 4, 4]
    assert all(p.gpu is None and p.environment()["CUDA_VISIBLE_DEVICES"] == "" for p in plans)
    assert [p.threads for p in plan_workers(4, "cpu", cpu_count=2, gpu_count=2)] == [1] * 4


def _search(workdir, trials, *extra, space=SPACE, preexec_fn=None):
    (workdir / "space.yaml").write_text(space)
    command = [
        sys.executable,
        "-m",
        "tuner.cli",
        "search",
        "--task",
        "forecasting",
        "--space",
        "space.yaml",
        "--trials",
        str(trials),
        "--pruner",
        "none",
        "--study",
        "par",
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        command,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=preexec_fn,
    )


def _check_record(storage, tracking, target, epochs=3):
    study = optuna.load_study(study_name="par", storage=storage)
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == target
    assert "RUNNING" not in states
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name("par")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("tuner.role") == "study"]
    children = [r for r in runs if r.data.tags.get("tuner.role") == "trial"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    finished = [c for c in children if c.data.tags["tuner.state"] in ("COMPLETE", "PRUNED")]
    assert len(finished) == target
    assert all(c.info.status != "RUNNING" for c in children)
    for child in finished:  # no metric lost under concurrent writes
        assert len(client.get_metric_history(child.info.run_id, "val_mae")) == epochs
    # each worker's writer registers its models in its own order: `best` ends on the best
    best = best_trial(study)
    assert str(client.get_model_version_by_alias("par", "best").version) == model_version(
        study, best
    )
    return study, children


def test_three_workers_on_the_default_local_storage(workdir):
    process = _search(workdir, 9, "--workers", "3")
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    assert "locked" not in output.lower()
    assert output.count("finished, running until 9") == 1  # one header, not one per worker
    storage = f"sqlite:///{workdir / 'mlruns' / 'optuna.db'}"
    _check_record(storage, f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}", 9)


def test_sigterm_stops_workers_of_a_launcher_that_ignores_sigint(workdir):
    """`nohup tuner search --workers 2 &`, then `kill`: every running trial is recorded,
    even when a worker's stop lands in a finalizer (the stop is also a flag that training
    checks after every batch, so a swallowed KeyboardInterrupt cannot let a worker run on)."""
    process = _search(
        workdir,
        4,
        "--workers",
        "2",
        space=SPACE.replace("max_epochs: 3", "max_epochs: 500"),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    storage = f"sqlite:///{workdir / 'mlruns' / 'optuna.db'}"

    def running() -> int:
        try:
            trials = optuna.load_study(study_name="par", storage=storage).trials
        except Exception:  # not created yet, or its tables are being created
            return 0
        return sum(t.state.name == "RUNNING" for t in trials)

    deadline = time.monotonic() + 120
    while running() < 2 and time.monotonic() < deadline:
        time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    trials = optuna.load_study(study_name="par", storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL", "FAIL"], output
    assert {attrs_of(t)["fail_reason"] for t in trials} == {"interrupted"}


@pytest.mark.parametrize("through", ["database", "proxy"])
def test_postgres_study_survives_a_killed_worker(workdir, postgres_urls, storage_proxies, through):
    """Directly on the database, or through Optuna's storage proxy (which has no heartbeats:
    the workers keep theirs on the database, so the killed worker's trial is still failed
    and retried)."""
    storage, tracking = postgres_urls
    proxy = storage_proxies(storage) if through == "proxy" else None
    process = _search(
        workdir,
        6,
        "--workers",
        "3",
        "--storage",
        storage,
        "--tracking-uri",
        tracking,
        "--artifact-root",
        str(workdir / "shared"),
        "--set",
        "max_epochs=20",  # a trial outlasts the poll -> kill delay, even on a busy machine
        "--heartbeat",
        "3",  # grace 12 s: a live worker on a busy 2-core machine is never taken for dead
        *(["--storage-proxy", proxy.address] if proxy else []),
    )
    victim, polled = None, None
    deadline = time.monotonic() + 300  # 3 workers loading torch on 2 busy cores took over 120 s
    while victim is None and time.monotonic() < deadline:
        try:  # one storage (one connection pool) for the whole poll
            polled = polled or optuna.storages.RDBStorage(storage)
            victim = _a_worker_in_a_trial(polled)
        except (KeyError, optuna.exceptions.StorageInternalError):
            pass  # not created yet, or its tables are being created right now
        time.sleep(0.05)
    if polled is not None:
        polled.engine.dispose()
    assert victim, "no worker started a trial"
    os.kill(victim, signal.SIGKILL)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    assert "1 worker(s) stopped early" in output
    study, children = _check_record(storage, tracking, 6, epochs=20)
    killed = [
        t
        for t in study.trials
        if t.state.name == "FAIL" and not attrs_of(t).get("fail_reason", "").startswith("not run")
    ]
    assert len(killed) == 1  # the killed one; its params were retried
    lost = [c for c in children if c.data.tags["tuner.state"] == "LOST"]
    assert len(lost) == 1 and lost[0].info.status == "KILLED"
    if proxy is not None:
        assert proxy.stop() == 0, proxy.output()


def _a_worker_in_a_trial(storage):
    """The pid of the worker running a trial that already has its MLflow run."""
    study = optuna.load_study(study_name="par", storage=storage)
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in running:
        # still in its first epoch: a trial near its end could finish before the kill lands
        if "mlflow_run_id" in attrs_of(trial) and not trial.intermediate_values:
            return int(attrs_of(trial)["worker"].rsplit(":", 1)[1])
    return None
