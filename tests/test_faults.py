"""Trial faults are contained and recorded; interrupts leave a clean, resumable record."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import optuna
import pytest
from mlflow import MlflowClient

import tuner
from tests.conftest import REPO, run_cli, wait_for
from tuner.cli import main
from tuner.config.trial_attrs import of as attrs_of
from tuner.errors import UsageError
from tuner.storage.locations import default_tracking_uri, resolve_storage
from tuner.storage.studies import load_study

FAULT_SPACE = """
metric: val_mae
params:
  hidden_size: {type: int, low: 4, high: 8}
  lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
fixed: {input_len: 12, horizon: 6, max_epochs: 3, fault_epoch: 1, folds: 1}
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
        ("nan", "train_loss became nan at epoch 1"),
        ("oom", "out of memory: OutOfMemoryError: CUDA out of memory"),
        ("error", "RuntimeError: boom: a bug in the model code"),
    ],
)
def test_a_faulty_trial_is_recorded_and_the_study_goes_on(fault_space, fault, reason):
    with pytest.raises(UsageError, match="the last 2 trials all failed"):
        _search(fault_space, 3, {"fault": fault}, max_failures=2)
    study = load_study("faults")
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]
    assert attrs_of(study.trials[0])["fail_reason"].startswith(reason)
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
    assert result.counts == {"complete": 2, "pruned": 0, "fail": 2, "interrupted": 0}
    client, runs = _child_runs()
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_fail"] == 2


def _start(workdir, space, trials, study="faults", extra=(), env=None):
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
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **(env or {}),
    }
    return subprocess.Popen(  # SIGINT as a terminal gives it, even if pytest ignores it
        command,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _stop_while_running(process: subprocess.Popen, signum: int) -> str:
    """Send `signum` a second into the first trial; the process must exit 130. Its stderr."""
    assert wait_for(lambda: "RUNNING" in _states()), process.communicate()
    time.sleep(1.0)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    return err


def _states():
    try:
        return [t.state.name for t in load_study("faults").trials]
    except UsageError:
        return []


def test_interrupt_marks_the_running_trial_closes_runs_and_resumes(workdir, fault_space):
    """Ctrl-C is the user stopping: not retried (SIGTERM, a preemption: test_preemption)."""
    slow = fault_space.read_text().replace("max_epochs: 3", "max_epochs: 400")
    fault_space.write_text(slow)
    process = _start(workdir, fault_space, 2, extra=["--set", "hidden_size=64"])
    err = _stop_while_running(process, signal.SIGINT)
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
    tried = [tuple(sorted(t.params.items())) for t in finished]
    assert len(set(tried)) == len(tried)  # the second terminal samples its own params
    _, runs = _child_runs()
    assert sum(r.data.tags["tuner.state"] == "COMPLETE" for r in runs.values()) == 4


def test_interrupted_trial_records_its_reason(workdir, fault_space):
    slow = fault_space.read_text().replace("max_epochs: 3", "max_epochs: 400")
    fault_space.write_text(slow)
    process = _start(workdir, fault_space, 2)
    assert wait_for(lambda: "RUNNING" in _states()), process.communicate()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    trial = load_study("faults").trials[0]
    assert attrs_of(trial).get("fail_reason") == "interrupted", (
        trial.state,
        attrs_of(trial),
        err,
    )


def test_ctrl_c_twice_ends_at_once_and_the_rerun_records_what_was_left(workdir, fault_space):
    slow = fault_space.read_text().replace("max_epochs: 3", "max_epochs: 400")
    fault_space.write_text(slow)
    process = _start(workdir, fault_space, 2)
    assert wait_for(lambda: _running_with_run()), process.communicate()
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert len(err.strip().splitlines()) == 1, err
    fast = ["--set", "max_epochs=2", "--allow-changes"]
    rerun = _start(workdir, fault_space, 2, extra=fast)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    _assert_settled()


def _running_with_run() -> bool:
    try:
        trials = load_study("faults").trials
    except UsageError:
        return False
    return any(t.state.name == "RUNNING" and "mlflow_run_id" in attrs_of(t) for t in trials)


def _assert_settled(target=2):
    """Exactly the target finished, no trial RUNNING, every MLflow run closed."""
    states = _states()
    assert "RUNNING" not in states and states.count("COMPLETE") == target, states
    client, runs = _child_runs()
    assert all(run.info.status != "RUNNING" for run in runs.values())
    parents = client.search_runs(
        [client.get_experiment_by_name("faults").experiment_id],
        filter_string="tags.`tuner.role` = 'study'",
    )
    assert [p.info.status for p in parents] == ["FINISHED"]


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers (a hung server)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


@pytest.mark.parametrize(
    "flag, url, words",
    [
        ("--tracking-uri", "http://127.0.0.1:{port}", "cannot reach the MLflow store"),
        ("--storage", "postgresql://me:pw@127.0.0.1:{port}/db", "cannot open"),
    ],
)
def test_a_store_that_does_not_answer_is_reported_within_seconds(
    workdir, silent_server, flag, url, words
):
    """Without the bound, MLflow's retries took 259 s and a database connect 116 s; the
    check waits CONNECT_TIMEOUT_S (10 s). The subprocess timeout is a hang guard."""
    address = url.format(port=silent_server)
    done = run_cli(workdir, "search", "--task", "forecasting", flag, address, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and words in done.stderr
    assert done.stderr.count("\n") == 1 and "me:pw@" not in done.stderr
    assert not (workdir / "mlruns").exists()


def test_a_lost_mlflow_server_stops_the_sweep_and_the_rerun_settles_it(
    workdir, fault_space, mlflow_server
):
    slow = fault_space.read_text().replace("max_epochs: 3", "max_epochs: 400")
    fault_space.write_text(slow)
    remote = ["--tracking-uri", mlflow_server.url]
    fast_failing = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}  # no minutes of retries here
    process = _start(workdir, fault_space, 2, extra=remote, env=fast_failing)
    assert wait_for(_running_with_run), process.communicate()
    mlflow_server.stop()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    assert err.startswith("error: the sweep stopped: the MLflow server stopped answering"), err
    assert "Traceback" not in err and err.count("\n") == 1, err
    trial = load_study("faults").trials[0]
    assert trial.state.name == "FAIL" and "stopped answering" in attrs_of(trial)["fail_reason"]
    mlflow_server.start()
    rerun = _start(
        workdir, fault_space, 2, extra=[*remote, "--set", "max_epochs=2", "--allow-changes"]
    )
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    _assert_settled_on(mlflow_server.url)


def _assert_settled_on(tracking_uri):
    states = _states()
    assert "RUNNING" not in states and states.count("COMPLETE") == 2, states
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("faults")
    runs = client.search_runs([experiment.experiment_id])
    assert runs and all(run.info.status != "RUNNING" for run in runs)
    first = [r for r in runs if r.data.tags.get("tuner.trial") == "0"]
    assert first[0].info.status == "FAILED"


@pytest.fixture
def small_disk(workdir):
    """The project folder on a 4 MB file system of its own (tmpfs; needs root)."""
    folder = workdir / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)])
    if mounted.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs the tests as root)")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_stops_the_sweep_and_the_rerun_settles_it(small_disk, fault_space):
    shutil.copy(fault_space, small_disk / "fault.yaml")
    space = small_disk / "fault.yaml"
    big = ["--set", "hidden_size=8"]
    first = _start(small_disk, space, 1, extra=big)
    assert first.wait(timeout=300) == 0, first.communicate()
    filler = small_disk / "filler"
    with open(filler, "wb") as stream:  # fill the disk to the last byte
        try:
            while True:
                stream.write(b"\0" * 65536)
                stream.flush()
        except OSError:
            pass
    process = _start(small_disk, space, 2, extra=big)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 1, err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1, err
    assert "full" in err
    filler.unlink()
    rerun = _start(small_disk, space, 2, extra=big)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    os.chdir(small_disk)
    _assert_settled()


def test_a_corrupt_default_store_is_one_line_and_stays_as_it_was(workdir, capsys):
    from tuner.cli import main

    database = workdir / "mlruns" / "optuna.db"
    database.parent.mkdir()
    database.write_bytes(b"not a database at all " * 100)
    for argv in (
        ["best", "--study", "x"],
        ["trials", "--study", "x"],
        ["search", "--task", "forecasting", "--max-epochs", "1"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --storage") and "cannot open" in err, err
        assert err.count("\n") == 1
    assert database.read_bytes() == b"not a database at all " * 100
    assert sorted(p.name for p in database.parent.iterdir()) == ["optuna.db"]


def test_reading_a_store_while_a_first_sweep_creates_it_breaks_nothing(workdir, fault_space):
    """`tuner trials` in a second terminal while the first sweep makes its database: the
    reader must not write Optuna's version stamp too (the sweep's own then failed with a
    UNIQUE constraint: 7 of 10 starts with the old check)."""
    for attempt in range(3):
        project = workdir / f"project{attempt}"  # a fresh store each time
        project.mkdir()
        os.chdir(project)
        process = _start(project, fault_space, 1, extra=["--set", "max_epochs=1"])
        while process.poll() is None:
            try:
                load_study("faults")
            except UsageError:
                pass  # not made yet
            time.sleep(0.005)
        _, err = process.communicate()
        assert process.returncode == 0 and "Traceback" not in err, err


KILL_POINTS = {  # FAULTY_KILL (tests/faulty_task.py): where the trial's process dies
    "right-after-the-trial-is-created": "created",
    "mid-epoch": "mid-epoch",
    "while-recording": "recording",
}


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_a_rerun_settles_a_trial_killed_at_any_moment(workdir, fault_space, request, store, point):
    """SIGKILL at each moment of a trial; the same command rerun (here in this process)
    finishes the study: the killed trial closed as interrupted (FAIL with that reason) and
    retried, nothing left RUNNING."""
    stores = []
    if store == "postgresql":
        storage, tracking = request.getfixturevalue("postgres_urls")
        stores = ["--storage", storage, "--tracking-uri", tracking]
        stores += ["--artifact-root", str(workdir / "shared")]
    command = ["--heartbeat", "1", "--quiet", *stores]
    killed = _start(
        workdir, fault_space, 1, extra=command, env={"FAULTY_KILL": KILL_POINTS[point]}
    )
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, point
    rerun = ["search", "--task", "tests.faulty_task", "--space", str(fault_space), "--trials", "1",
             "--study", "faults", "--pruner", "none", *command]  # fmt: skip
    assert main(rerun) == 0
    trials = optuna.load_study(study_name="faults", storage=_storage(stores)).trials
    states = [(t.state.name, attrs_of(t).get("fail_reason")) for t in trials]
    assert [s for s, _ in states].count("COMPLETE") == 1 and ("RUNNING", None) not in states
    assert ("FAIL", "interrupted") in states, states


def _storage(stores: list[str]) -> str:
    return stores[stores.index("--storage") + 1] if stores else resolve_storage(None)
