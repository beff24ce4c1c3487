"""A minimal W3C WebDriver client (chromedriver + Debian's headless Chromium), enough for the
UI test: open a page, wait for an element, click it, read the page, take a screenshot.
No browser download and no extra package."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.conftest import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1600,1000",
]


def available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


class Browser:
    def __init__(self, profile: Path) -> None:
        self.port = free_port()
        self.driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_http(f"http://127.0.0.1:{self.port}/status", 30)
        options = {"binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={profile}"]}
        answer = self._call(
            "POST",
            "/session",
            {
                "capabilities": {
                    "alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}
                }
            },
        )
        self.session = answer["sessionId"]

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body or {}).encode() if method == "POST" else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"{}").get("value")

    def _session(self, method: str, path: str, body: dict | None = None) -> dict:
        return self._call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        self._session("POST", "/url", {"url": url})

    def wait_for(self, css: str, timeout: float = 60) -> str:
        """The element id of the first match, once it exists."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self._session("POST", "/elements", {"using": "css selector", "value": css})
            if found:
                return next(iter(found[0].values()))
            time.sleep(0.5)
        raise TimeoutError(f"no element {css!r} after {timeout}s")

    def click(self, element: str) -> None:
        self._session("POST", f"/element/{element}/click")

    def text(self) -> str:
        return self._session(
            "POST", "/execute/sync", {"script": "return document.body.innerText;", "args": []}
        )

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self._session("GET", "/screenshot")))

    def close(self) -> None:
        try:
            self._call("DELETE", f"/session/{self.session}")
        finally:
            self.driver.terminate()
            self.driver.wait(timeout=30)


def wait_for_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout}s")
