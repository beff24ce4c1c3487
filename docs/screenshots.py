"""Retake docs/mlflow-ui.png and docs/report.png from the demo study, as a user sees them.

Run in a clone after `make demo` (needs Debian's chromium and chromium-driver):
    .venv/bin/python docs/screenshots.py
The MLflow UI is `tuner ui` on the study's runs table with the study expanded; the report is
the top of `tuner report`'s page."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the clone's tests/

from tests import webdriver  # noqa: E402
from tests.conftest import REPO, free_port  # noqa: E402

STUDY = "forecasting-air_passengers"
DOCS = REPO / "docs"


def mlflow_ui(out: Path) -> None:
    port = free_port()
    log = Path("ui.log").open("w")
    command = [sys.executable, "-m", "tuner.cli", "ui", "--port", str(port), "--study", STUDY]
    ui = subprocess.Popen(command, stdout=log, stderr=subprocess.DEVNULL, env=_env())
    browser = None
    try:
        webdriver.wait_for_http(f"http://127.0.0.1:{port}/", 180)
        url = Path("ui.log").read_text().splitlines()[0].removeprefix("MLflow UI: ")
        browser = webdriver.Browser(Path("profile").absolute())
        browser.open(url)
        browser.click(browser.wait_for('button[data-component-id*="runnamecellrenderer"]'))
        deadline = time.monotonic() + 60
        while "trial-0" not in browser.text() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)  # the metric cells fill in after the names
        browser.screenshot(out)
    finally:
        if browser:
            browser.close()
        ui.send_signal(signal.SIGTERM)
        ui.wait(timeout=60)
        log.close()


def report(out: Path, height: int = 1725) -> None:
    subprocess.run([sys.executable, "-m", "tuner.cli", "report", "--study", STUDY],
                   check=True, env=_env())  # fmt: skip
    page = Path("mlruns/reports") / STUDY / "report.html"
    subprocess.run([webdriver.CHROMIUM, *webdriver.FLAGS[:3], f"--screenshot={out}",
                    f"--window-size=900,{height}", page.absolute().as_uri()],
                   check=True, capture_output=True)  # fmt: skip
    Image.open(out).convert("RGB").save(out, optimize=True)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


if __name__ == "__main__":
    mlflow_ui(DOCS / "mlflow-ui.png")
    report(DOCS / "report.png")
    print("written: docs/mlflow-ui.png, docs/report.png")
