"""Preemptible machines, measured: the same 2-process charlm sweep run undisturbed, then with
one process killed (SIGKILL) at random every KILL_EVERY seconds (shorter than a trial) and
a new one started in its place, as a cluster would; heartbeat 5 s, a resume checkpoint
every epoch. Wall to the target and epochs trained in each, and how many epochs the
retries would have trained again without resume. Run: python -m benchmarks.preemption
(about 12 minutes on 2 cores).
"""

from __future__ import annotations

import ast
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow

from benchmarks.common import REPO, load, machine, print_and_record, scratch

TRIALS, EPOCHS, KILL_EVERY = 4, 12, 70
# every trial trains the same model, so both sweeps do the same work whatever params the
# replacement processes' seeds would draw
PINNED = {"hidden_size": 200, "num_layers": 2, "embed_size": 32, "dropout": 0.1, "lr": 3e-3,
          "bptt": 100}  # fmt: skip
STUDY = "preempt"


def sweep_command(seed: int) -> list[str]:
    return [
        sys.executable, "-m", "tuner.cli", "search", "--task", "charlm", "--study", STUDY,
        "--trials", str(TRIALS), "--pruner", "none", "--seed", str(seed), "--heartbeat", "5",
        "--set", f"max_epochs={EPOCHS}", "--set", "checkpoint_every=1", "--quiet",
        *(f"--set={name}={value}" for name, value in PINNED.items()),
    ]  # fmt: skip


def start(folder: Path, seed: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(sweep_command(seed), cwd=folder, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def complete(folder: Path) -> int:
    try:
        return sum(t.state.name == "COMPLETE" for t in load(folder, STUDY).trials)
    except Exception:  # the study is not made yet
        return 0


def run(kill: bool) -> dict[str, float]:
    """One sweep to TRIALS complete trials: wall, kills, epochs trained and re-trained."""
    folder, rng, seed = scratch(), random.Random(0), 1
    started = time.monotonic()
    processes = [start(folder, seed), start(folder, seed + 1)]
    seed, kills, next_kill = seed + 2, 0, started + KILL_EVERY
    while complete(folder) < TRIALS:
        time.sleep(1)
        if kill and time.monotonic() >= next_kill and complete(folder) < TRIALS - 1:
            victim = rng.randrange(len(processes))
            processes[victim].send_signal(signal.SIGKILL)
            processes[victim].wait()
            processes[victim] = start(folder, seed)
            seed, kills, next_kill = seed + 1, kills + 1, time.monotonic() + KILL_EVERY
    wall = time.monotonic() - started
    for process in processes:
        process.wait(timeout=600)
    return {"wall": wall, "kills": kills, **epochs_trained(folder)}


def epochs_trained(folder: Path) -> dict[str, int]:
    """From MLflow: every trial run's epochs, less those a resumed run replayed (a killed
    run loses the metrics it had not sent yet: at most 5 s of them)."""
    client = mlflow.MlflowClient(f"sqlite:///{folder}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name(STUDY)
    trained = replayed = 0
    for run in client.search_runs([experiment.experiment_id], "tags.`tuner.role` = 'trial'"):
        steps = len(client.get_metric_history(run.info.run_id, "val_bpc"))
        where = run.data.tags.get("tuner.resumed_from")
        restored = ast.literal_eval(where)["epoch"] + 1 if where else 0
        trained += steps - restored
        replayed += restored
    return {"epochs": trained, "saved_by_resume": replayed}


def main() -> str:
    calm, killed = run(kill=False), run(kill=True)
    ratio = killed["wall"] / calm["wall"]
    per_epoch = calm["wall"] * 2 / max(calm["epochs"], 1)  # two processes train at once
    return "\n".join([
        "## Preemptible machines: a sweep whose workers are killed mid-trial",
        "",
        f"Machine: {machine()}. `python -m benchmarks.preemption`: charlm (CPU section), "
        f"{TRIALS} trials of {EPOCHS} epochs of one pinned model ({PINNED}), no pruner, "
        f"2 processes sharing the study "
        f"(1 thread each), heartbeat 5 s, a resume checkpoint every epoch. Killed: one "
        f"process at random gets SIGKILL every {KILL_EVERY} s and a new one starts in its "
        f"place.",
        "",
        "| sweep | wall to the target (s) | kills | epochs trained | epochs resume saved |",
        "|---|---|---|---|---|",
        f"| undisturbed | {calm['wall']:.0f} | 0 | {calm['epochs']} | - |",
        f"| killed every {KILL_EVERY} s | {killed['wall']:.0f} | {killed['kills']} | "
        f"{killed['epochs']} | {killed['saved_by_resume']} |",
        "",
        f"Killed / undisturbed wall: **{ratio:.2f}x** (target <= 1.3x). Without resume the "
        f"retries would have trained {killed['saved_by_resume']} epochs again (about "
        f"{killed['saved_by_resume'] * per_epoch:.0f} s of one process at "
        f"{per_epoch:.0f} s an epoch).",
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    print_and_record(main())
