"""`tuner ui`: the MLflow UI on 127.0.0.1 over this project's store, with the study's URL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from tuner.errors import UsageError, mask_secrets
from tuner.storage.locations import resolve_storage, resolve_tracking
from tuner.tracking import SHARED_VIEW_TAG, VIEW_KEY, TrackingStore
from tuner.tracking.checks import check_tracking_exists


def free_port(preferred: int) -> int:
    """The preferred port when it is free, else any free one."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                return probe.getsockname()[1]
            except OSError:
                continue
    raise UsageError("no free TCP port on 127.0.0.1 for the MLflow UI")


def experiment_url(tracking_uri: str, base: str, study: str | None) -> str:
    """The runs-table ("Model training") view of the study, or of the latest experiment, on
    the UI at `base`."""
    found = TrackingStore(tracking_uri).experiment(study)
    if found is None and study:
        raise UsageError(f"--study {study!r}: no MLflow experiment of that name in {tracking_uri}")
    base = base.rstrip("/") + "/"
    if found is None:
        return base
    experiment_id, tags = found
    view = f"viewStateShareKey={VIEW_KEY}&" if f"{SHARED_VIEW_TAG}{VIEW_KEY}" in tags else ""
    return f"{base}#/experiments/{experiment_id}/runs?{view}workflowType=machine_learning"


def serve(
    tracking_uri: str | None, port: int, study: str | None, storage: str | None = None
) -> int:
    """Start the MLflow UI over the project's tracking store (which must exist: browsing
    never creates one); an MLflow server already is a UI, so only its URL is printed.
    `storage` is accepted like every command's, and checked."""
    resolve_storage(storage)
    uri, _ = resolve_tracking(tracking_uri)
    check_tracking_exists(uri)
    if uri.startswith(("http://", "https://")):
        print(f"MLflow UI: {mask_secrets(experiment_url(uri, uri, study))}")
        return 0
    port = free_port(port)
    url = experiment_url(uri, f"http://127.0.0.1:{port}", study)
    # one worker: enough for one person's browser, and it answers in seconds (4: 30-40 s)
    command = [sys.executable, "-m", "mlflow", "ui", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1"]
    print(f"MLflow UI: {url}\n(Ctrl-C to stop)", flush=True)
    # MLflow's background job runner (GenAI evaluation jobs) is not needed to browse runs,
    # and it outlives a stopped server: keep it off. The store's URI goes through the
    # environment, not the command line, where `ps` would show a password in it.
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_BACKEND_STORE_URI": uri,
    }
    server = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        return server.wait()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM turned into it by the CLI
        return 0
    finally:
        _stop(server)


def _stop(server: subprocess.Popen) -> None:
    """The MLflow server starts its own workers: stop it (and so them), never orphan it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)  # the server's own process group: it and its workers
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            continue
