"""What the MLflow Model costs and gives: the time to record a new best model (an MLflow
Model logged and registered, against the raw .ckpt artifact + registry entry of 7e3bbbc,
on the same store in the same run), the `mlflow models serve` round trip, and how soon
`tuner ui` answers with one server worker against MLflow's default of four.

Run alone (updates its section of RESULTS.md): `python -m benchmarks.mlflow_models`."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd

from benchmarks.common import REPO, scratch, write_section

REPEATS = 5
ROUND_TRIPS = 30


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _wait(url: str, process: subprocess.Popen, limit: float = 180) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit and process.poll() is None:
        if _answers(url):
            return time.perf_counter() - started
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {limit} s")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _old_way(client, experiment_id: str, checkpoint: Path, name: str) -> None:
    """7e3bbbc: the .ckpt as a run artifact, registered from its artifact URI."""
    run_id = client.create_run(experiment_id).info.run_id
    client.log_artifact(run_id, str(checkpoint), "checkpoint")
    source = f"{client.get_run(run_id).info.artifact_uri}/checkpoint/{checkpoint.name}"
    try:
        client.create_registered_model(name)
    except Exception:
        pass
    version = client.create_model_version(name, source=source, run_id=run_id)
    client.set_registered_model_alias(name, "best", version.version)


def _record_times(folder: Path) -> tuple[list[float], list[float]]:
    """(old, new) seconds per best model, interleaved so both see the same machine load."""
    import tuner
    from tuner.models.sources import resolve_source
    from tuner.storage.locations import default_tracking_uri, resolve_storage
    from tuner.tasks import get_task
    from tuner.tracking import StudyTracker

    os.chdir(folder)
    tuner.search("forecasting", trials=1, study="bench", pruner="none", quiet=True)
    uri = default_tracking_uri()
    source = resolve_source("study:bench", uri, resolve_storage(None))
    task = get_task("forecasting")
    data = task.load_data({"data": str(task.default_data)})
    from tuner.contract.checkpoints import load_checkpoint

    settings = load_checkpoint(source.path, task="forecasting")["settings"]
    tracker = StudyTracker(uri, "bench", (folder / "mlruns" / "artifacts").as_uri(), "bench-new")
    tracker.open_study({}, {})
    old, new = [], []
    for _ in range(REPEATS):
        started = time.perf_counter()
        _old_way(tracker.client, tracker.experiment_id, source.path, "bench-old")
        old.append(time.perf_counter() - started)
        run_id = tracker.client.create_run(tracker.experiment_id).info.run_id
        started = time.perf_counter()
        logged = tracker.log_best_model(
            tracker.new_model(run_id, 0),
            run_id,
            0,
            (1.0, 0.0),
            task,
            source.path,
            task.example(data, settings),
            {},
        )
        tracker.move_best_alias(logged.version, (1.0, 0.0))
        new.append(time.perf_counter() - started)
    return old, new


def _serve(folder: Path) -> tuple[float, list[float]]:
    """(seconds until `mlflow models serve` answers, round-trip seconds of one request)."""
    from tuner.storage.locations import default_tracking_uri

    port = _free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": default_tracking_uri(),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/bench-new@best"]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        command, env=env, cwd=folder, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        startup = _wait(f"http://127.0.0.1:{port}/ping", server)
        frame = pd.read_csv(REPO / "tasks" / "data" / "air_passengers.csv")
        body = json.dumps({"dataframe_split": frame.to_dict(orient="split")}).encode()
        trips = []
        for _ in range(ROUND_TRIPS):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/invocations",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=60) as response:
                json.load(response)
            trips.append(time.perf_counter() - started)
        return startup, trips
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def _ui_startup(folder: Path, workers: int) -> float:
    """Seconds until the MLflow UI over the project's store answers its first page."""
    from tuner.storage.locations import default_tracking_uri

    port = _free_port()
    command = [sys.executable, "-m", "mlflow", "ui", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_BACKEND_STORE_URI": default_tracking_uri(),
    }
    server = subprocess.Popen(
        command, env=env, cwd=folder, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        return _wait(f"http://127.0.0.1:{port}/", server)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def main() -> str:
    folder = scratch()
    here = os.getcwd()
    try:
        old, new = _record_times(folder)
        startup, trips = _serve(folder)
        ui = {workers: _ui_startup(folder, workers) for workers in (1, 4)}
    finally:
        os.chdir(here)
    old_s, new_s = statistics.median(old), statistics.median(new)
    trip_ms = sorted(t * 1000 for t in trips)
    return "\n".join(
        [
            "## MLflow Models: recording a best model, serving it, opening the UI",
            "",
            f"Forecasting model of the shipped demo, local SQLite store; medians of {REPEATS}.",
            "",
            "| what | baseline | now | ratio |",
            "|---|---|---|---|",
            f"| record a new best model | raw .ckpt artifact + registry entry (7e3bbbc): "
            f"{old_s:.2f} s | MLflow Model (pyfunc, signature, example, logged model, "
            f"metrics linked) + registry entry: {new_s:.2f} s | {new_s / old_s:.1f}x |",
            f"| `tuner ui` answers | MLflow's 4 workers: {ui[4]:.1f} s | 1 worker: "
            f"{ui[1]:.1f} s | {ui[1] / ui[4]:.2f}x |",
            "",
            f"`mlflow models serve -m models:/<study>@best --env-manager local`: answers after "
            f"{startup:.1f} s; `/invocations` with the 144-month series ({ROUND_TRIPS} "
            f"requests, one at a time): median {statistics.median(trip_ms):.0f} ms, "
            f"slowest {trip_ms[-1]:.0f} ms.",
            "",
        ]
    )


if __name__ == "__main__":
    measured = main()
    write_section(measured)
    print(measured)
