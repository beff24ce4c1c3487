"""The MLflow UI as a person sees it, in headless Chromium: `tuner ui` on a finished study
shows the study's parent run, its nested trials, the metric and params as columns, and
the report logged on the parent run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

import tuner
from tests import webdriver
from tests.conftest import REPO, free_port
from tuner.cli import main
from tuner.storage.locations import default_tracking_uri

pytestmark = pytest.mark.skipif(
    not webdriver.available(),
    reason="no Chromium here (Debian packages chromium and chromium-driver; .ci/run installs "
    "them)",
)


def _server_left(port: int) -> bool:
    """Is anything still serving (or started to serve) the UI port?"""
    found = subprocess.run(["pgrep", "-f", f"--port {port}"], capture_output=True, text=True)
    return bool(found.stdout.strip())


def _wait_for_text(browser, words, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = browser.text()
        if all(word in text for word in words):
            return text
        time.sleep(0.5)
    raise AssertionError(f"page never showed {words}; it shows:\n{browser.text()[:3000]}")


def test_mlflow_ui_shows_study_trials_metric_and_report(tiny_space, workdir):
    result = tuner.search(
        "forecasting", trials=2, space=str(tiny_space), study="ui-check", pruner="none", quiet=True
    )
    assert main(["report", "--study", "ui-check"]) == 0
    port = free_port()
    log = open(workdir / "ui.log", "w")  # a file, not a pipe nobody drains
    ui = subprocess.Popen(
        [sys.executable, "-m", "tuner.cli", "ui", "--port", str(port), "--study", "ui-check"],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"},
    )
    browser = None
    try:
        webdriver.wait_for_http(f"http://127.0.0.1:{port}/", 180)
        url = (workdir / "ui.log").read_text().splitlines()[0].removeprefix("MLflow UI: ")
        assert url.startswith(f"http://127.0.0.1:{port}/#/experiments/")
        assert "viewStateShareKey=tuner" in url and "workflowType=machine_learning" in url
        browser = webdriver.Browser(workdir / "profile")
        browser.open(url)
        browser.click(browser.wait_for('button[data-component-id*="runnamecellrenderer"]'))
        text = _wait_for_text(browser, ["ui-check", "trial-0 complete", "trial-1 complete"])
        for column in ("val_mae", "test_mae", "hidden_size", "lr", "tuner.state"):
            assert column in text
        browser.screenshot(workdir / "ui.png")
        if os.environ.get("TUNER_UI_SCREENSHOT"):
            shutil.copy(workdir / "ui.png", os.environ["TUNER_UI_SCREENSHOT"])
        experiment = MlflowClient(default_tracking_uri()).get_experiment_by_name("ui-check")
        browser.open(
            f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs/"
            f"{result.parent_run_id}/artifacts"
        )
        _wait_for_text(browser, ["report", "trials.csv"])
    finally:
        if browser:
            browser.close()
        ui.send_signal(signal.SIGTERM)  # tuner ui stops the MLflow server's process group
        ui.wait(timeout=60)
        log.close()
        assert not _server_left(port), "the MLflow server outlived tuner ui"
