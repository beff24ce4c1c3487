"""Trial faults are contained and recorded; interrupts leave a clean, resumable record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

import tuner
from tests.conftest import REPO
from tuner.errors import UsageError
from tuner.stores import default_tracking_uri, load_study

FAULT_SPACE = """
metric: val_mae
params:
  hidden_size: {type: int, low: 4, high: 8}
fixed: {input_len: 12, horizon: 6, max_epochs: 3, fault_epoch: 1}
"""


@pytest.fixture
def fault_space(workdir):
    path = workdir / "fault.yaml"
    path.write_text(FAULT_SPACE)
    return path


def _search(space, trials, overrides=None, **options):
    return tuner.search(
        "tests.faulty_task",
        trials=trials,
        space=str(space),
        study="faults",
        pruner="none",
        quiet=True,
        overrides=overrides or {},
        **options,
    )


def _child_runs():
    client = MlflowClient(default_tracking_uri())
    experiment = client.get_experiment_by_name("faults")
    runs = client.search_runs([experiment.experiment_id])
    return client, {
        int(r.data.tags["tuner.trial"]): r
        for r in runs
        if r.data.tags.get("tuner.role") == "trial"
    }


@pytest.mark.parametrize(
    "fault, reason",
    [
        ("nan", "train_loss became nan at epoch 1, batch 0"),
        ("oom", "out of memory: OutOfMemoryError: CUDA out of memory"),
        ("error", "RuntimeError: boom: a bug in the model code"),
    ],
)
def test_a_faulty_trial_is_recorded_and_the_study_goes_on(fault_space, fault, reason):
    with pytest.raises(UsageError, match="the last 2 trials all failed"):
        _search(fault_space, 3, {"fault": fault}, max_failures=2)
    study = load_study("faults")
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]
    assert study.trials[0].user_attrs["fail_reason"].startswith(reason)
    client, runs = _child_runs()
    assert runs[0].info.status == "FAILED"
    assert runs[0].data.tags["tuner.fail_reason"].startswith(reason)
    assert runs[0].data.tags["tuner.epochs"] == "1"  # stopped in epoch 1, not at the end
    history = client.get_metric_history(runs[0].info.run_id, "val_mae")
    assert [m.step for m in history] == [0]
    artifacts = [a.path for a in client.list_artifacts(runs[0].info.run_id)]
    assert "traceback.txt" in artifacts
    # the same study then goes on once the fault is gone (a change of setting, allowed)
    result = _search(fault_space, 2, {"fault": "none"}, allow_changes=True)
    assert result.counts == {"complete": 2, "pruned": 0, "fail": 2}
    client, runs = _child_runs()
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_fail"] == 2


def _start(workdir, space, trials, study="faults", extra=()):
    command = [
        sys.executable,
        "-m",
        "tuner.cli",
        "search",
        "--task",
        "tests.faulty_task",
        "--space",
        str(space),
        "--trials",
        str(trials),
        "--study",
        study,
        "--pruner",
        "none",
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(  # SIGINT as a terminal gives it, even if pytest ignores it
        command,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _states():
    try:
        return [t.state.name for t in load_study("faults").trials]
    except UsageError:
        return []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_marks_the_running_trial_closes_runs_and_resumes(workdir, fault_space, signum):
    slow = fault_space.read_text().replace("max_epochs: 3", "max_epochs: 400")
    fault_space.write_text(slow)
    process = _start(workdir, fault_space, 2, extra=["--set", "hidden_size=64"])
    assert _wait_for(lambda: "RUNNING" in _states()), process.communicate()
    time.sleep(1.0)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "resume with: tuner search --task tests.faulty_task" in err
    assert _states() == ["FAIL"]
    client, runs = _child_runs()
    assert runs[0].info.status == "KILLED" and runs[0].data.tags["tuner.state"] == "INTERRUPTED"
    parent = client.search_runs(
        [runs[0].info.experiment_id], filter_string="tags.`tuner.role` = 'study'"
    )[0]
    assert parent.info.status == "KILLED"
    fast = fault_space.read_text().replace("max_epochs: 400", "max_epochs: 2")
    fault_space.write_text(fast)
    result = _search(fault_space, 2, allow_changes=True)
    assert result.counts["complete"] == 2 and _states() == ["FAIL", "COMPLETE", "COMPLETE"]


def test_two_terminals_never_exceed_the_target(workdir, fault_space):
    processes = [_start(workdir, fault_space, 4) for _ in range(2)]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    study = load_study("faults")
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 4
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    _, runs = _child_runs()
    assert sum(r.data.tags["tuner.state"] == "COMPLETE" for r in runs.values()) == 4
