"""MLflow's own model server, started by its own CLI on a study's registered best: it
answers /invocations with the rows `tuner predict` writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

import tuner
from tests.conftest import AIR, answers, free_port, wait_for
from tuner.storage.locations import default_tracking_uri


@pytest.fixture
def served(tiny_space, workdir):
    """`mlflow models serve -m models:/<study>@best --env-manager local` on a tiny sweep."""
    tuner.search("forecasting", trials=2, space=str(tiny_space), study="served", quiet=True)
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": default_tracking_uri(),
        # the server's own executables (uvicorn) live beside this interpreter
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/served@best"]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    log = open(workdir / "serve.log", "w")
    server = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: answers(url, "/ping") or server.poll() is not None, timeout=120)
        assert server.poll() is None, (workdir / "serve.log").read_text()
        yield url
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        log.close()


def test_mlflow_models_serve_answers_with_the_forecast_rows(served):
    frame = pd.read_csv(AIR)
    body = json.dumps({"dataframe_split": frame.to_dict(orient="split")}).encode()
    request = urllib.request.Request(
        f"{served}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)["predictions"]
    expected = tuner.predict("study:served", data=frame)
    assert [row["ds"][:10] for row in answer] == expected["ds"].astype(str).str[:10].tolist()
    assert [row["y_hat"] for row in answer] == pytest.approx(expected["y_hat"].tolist())
    assert {row["unique_id"] for row in answer} == set(expected["unique_id"])
