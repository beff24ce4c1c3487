"""Preemptible trials: a trial killed (SIGKILL) or preempted (SIGTERM) is queued again and
its retry continues from the trial's last checkpoint, not from epoch 0."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from mlflow import MlflowClient

from tests.test_faults import (
    FAULT_SPACE,
    _child_runs,
    _search,
    _start,
    _states,
    _stop_while_running,
)
from tuner.config import keys
from tuner.config.trial_attrs import of as attrs_of
from tuner.reports.ranking import trials_table
from tuner.storage.locations import default_tracking_uri
from tuner.storage.studies import load_study
from tuner.training.preemption import Resume

CHECKPOINT = Path("mlruns/checkpoints/faults/resume/trial-0.ckpt")


def _space(workdir: Path, epochs: int) -> Path:
    path = workdir / "fault.yaml"
    path.write_text(FAULT_SPACE.replace("max_epochs: 3", f"max_epochs: {epochs}"))
    return path


def _epochs_once(run_id: str, key: str = "val_mae") -> list[int]:
    history = MlflowClient(default_tracking_uri()).get_metric_history(run_id, key)
    return sorted(m.step for m in history)


def test_a_killed_trial_resumes_from_its_last_checkpoint(workdir):
    fault_space = _space(workdir, 40)
    slow = ["--set", "hidden_size=256", "--set", "num_layers=3", "--set", "checkpoint_every=3"]
    process = _start(workdir, fault_space, 1, extra=slow)
    deadline = time.monotonic() + 120
    while not (workdir / CHECKPOINT).is_file() and time.monotonic() < deadline:
        time.sleep(0.005)
    process.kill()  # SIGKILL: nothing recorded, the checkpoint is all that is left
    process.communicate()
    saved = Resume.load(workdir / CHECKPOINT)
    assert saved is not None and saved.fold == 0 and (saved.epoch + 1) % 3 == 0

    result = _search(fault_space, 1, overrides={"hidden_size": 256, "num_layers": 3,
                                               "checkpoint_every": 3})  # fmt: skip
    assert result.counts["complete"] == 1 and _states() == ["FAIL", "COMPLETE"]
    retry = load_study("faults").trials[1]
    assert attrs_of(retry)[keys.RESUMED_FROM] == {
        "trial": 0,
        "fold": 0,
        "epoch": saved.epoch,
    }
    # it ends at epoch 40 having trained only the epochs after the checkpoint: the restored
    # record counts saved.epoch + 1 epochs, training added the rest
    assert attrs_of(retry)[keys.EPOCHS] == 40
    _, runs = _child_runs()
    assert _epochs_once(runs[1].info.run_id) == list(range(40))  # one curve, no repeats
    assert runs[1].data.tags["tuner.resumed_from"].startswith("{'trial': 0")
    assert not (workdir / CHECKPOINT).exists()  # removed once the trial finished


def test_sigterm_is_a_preemption_checkpoint_requeue_and_resume(workdir):
    fault_space = _space(workdir, 300)
    process = _start(workdir, fault_space, 1, extra=["--set", "hidden_size=64"])
    err = _stop_while_running(process, signal.SIGTERM)
    assert "preempted (SIGTERM): each running trial saved a checkpoint" in err
    assert _states() == ["FAIL", "WAITING"]
    preempted = load_study("faults").trials[0]
    reason = attrs_of(preempted)[keys.FAIL_REASON]
    assert reason.startswith("preempted (SIGTERM) after epoch ") and "queued again" in reason
    saved = Resume.load(workdir / CHECKPOINT)
    assert saved is not None and f"after epoch {saved.epoch};" in reason
    _, runs = _child_runs()
    assert runs[0].data.tags["tuner.state"] == "PREEMPTED" and runs[0].info.status == "KILLED"
    shown = trials_table(load_study("faults"))  # as `tuner trials` shows it: nothing failed
    assert shown["state"].tolist() == ["INTERRUPTED", "WAITING"]
    assert shown["origin"].tolist()[1] == "retry of trial 0"

    result = _search(fault_space, 1, overrides={"hidden_size": 64})
    assert result.counts["complete"] == 1 and _states() == ["FAIL", "COMPLETE"]
    assert (result.counts["fail"], result.counts["interrupted"]) == (0, 1)
    retry = load_study("faults").trials[1]
    assert attrs_of(retry)[keys.RESUMED_FROM]["epoch"] == saved.epoch
    assert attrs_of(retry)[keys.EPOCHS] == 300
    assert keys.FAIL_REASON not in attrs_of(retry)  # the retry does not inherit an outcome
    table = trials_table(load_study("faults"))
    assert table["origin"].tolist()[1] == f"resumed trial 0 after epoch {saved.epoch}"
    assert not (workdir / CHECKPOINT).exists()
