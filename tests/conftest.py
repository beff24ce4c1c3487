"""Shared fixtures: each test runs in its own folder, so `mlruns/` is fresh and private."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
AIR = REPO / "tasks" / "data" / "air_passengers.csv"

TINY_SPACE = """
metric: val_mae
direction: minimize
params:
  hidden_size: {type: int, low: 4, high: 16, log: true}
  lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
  transform: {type: categorical, choices: [none, log]}
fixed:
  input_len: 12
  horizon: 6
  max_epochs: 2
  batch_size: 32
  folds: 1
  keep_top: 0  # no weights beyond the best's: tests of ensembles ask for them
"""

# Modules whose tests run longest (several processes, servers, simulated hosts) start
# first, so the test processes of `pytest -n 2` do not end with one of them running alone.
LONGEST_FIRST = (
    "test_fleet", "test_docs", "test_workers", "test_faults", "test_multihost", "test_proxy",
    "test_packaging", "test_security", "test_warmstart",
)  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    """Each of `pytest -n 2`'s processes trains in-process trials on one torch thread: with
    two each on 2 cores, a test beside the multi-process ones ran 5x slower than alone."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.module.__name__.rsplit(".", 1)[-1], len(rank)))


@pytest.fixture(autouse=True)
def forgotten_secrets(monkeypatch):
    """Each test starts with no remembered URL secret and leaves none to the tests after it
    (a process remembers every URL it was given, and hides its secrets in all it prints)."""
    from tuner import redact

    monkeypatch.setattr(redact, "_remembered", set())


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture
def tiny_space(workdir: Path) -> Path:
    path = workdir / "tiny.yaml"
    path.write_text(TINY_SPACE)
    return path


def make_long_csv(path: Path, n_series: int = 2, length: int = 60, seed: int = 0) -> Path:
    """Seasonal series with trend and noise, in long format (unique_id, ds, y)."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        t = np.arange(length)
        y = 50 + 10 * i + 0.5 * t + 8 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, length)
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": f"s{i}",
                    "y": y,
                    "ds": pd.date_range("2000-01-01", periods=length, freq="MS"),
                }
            )
        )
    pd.concat(frames)[["unique_id", "ds", "y"]].to_csv(path, index=False)
    return path


def postgres_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def search_cli(space: Path, trials: int | str, *extra: str) -> int:
    """`tuner search --task forecasting --space SPACE --trials N ...` through the real CLI."""
    from tuner.cli import main

    return main(
        ["search", "--task", "forecasting", "--space", str(space), "--trials", str(trials), *extra]
    )


@pytest.fixture
def postgres_urls():
    """Two fresh databases (Optuna, MLflow) on the local PostgreSQL server, dropped after."""
    if not postgres_available():
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432 (CI starts one where installed)")
    names = create_databases("tuner_test")
    yield [f"postgresql://postgres@127.0.0.1:5432/{name}" for name in names]
    drop_databases(names)


def create_databases(prefix: str) -> list[str]:
    """Two fresh databases on the local PostgreSQL server, for Optuna and for MLflow."""
    import psycopg

    names = [f"{prefix}_{uuid.uuid4().hex[:8]}_{kind}" for kind in ("optuna", "mlflow")]
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres",
                         autocommit=True) as admin:  # fmt: skip
        for name in names:
            admin.execute(f"CREATE DATABASE {name}")
    return names


def drop_databases(names: list[str]) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres",
                         autocommit=True) as admin:  # fmt: skip
        for name in names:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run_cli(workdir: Path, *argv: str, env: dict | None = None, timeout: int = 300):
    """`python -m tuner.cli ARGV` in `workdir`, as a user's shell would run it."""
    import os
    import subprocess
    import sys

    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tuner.cli", *argv],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for(predicate, timeout: float = 120) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` seconds pass (False)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def answers(url: str, path: str = "/health") -> bool:
    """A server answers its health check (MLflow's tracking server: /health, its model
    server: /ping)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}{path}", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class MlflowServer:
    """A real `mlflow server` (one worker, artifacts served from `folder/artifacts`) that a
    test may stop and start again on the same port."""

    def __init__(self, folder: Path, backend: str | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.artifacts = folder / "artifacts"
        self.command = [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
            "--port", str(self.port), "--workers", "1",
            "--backend-store-uri", backend or f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination", str(self.artifacts),
        ]  # fmt: skip
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.process = subprocess.Popen(
            self.command, cwd=self.folder, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert wait_for(lambda: answers(self.url), timeout=120), "mlflow server down"

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


class StorageProxy:
    """A real `tuner storage-proxy` (Optuna's gRPC proxy server) in front of `storage`."""

    def __init__(self, storage: str, folder: Path) -> None:
        self.port = free_port()
        self.address = f"grpc://127.0.0.1:{self.port}"
        home = folder / f"proxy-{self.port}"  # its own working folder, like another host's
        home.mkdir()
        self.log = home / "proxy.log"
        command = [sys.executable, "-m", "tuner.cli", "storage-proxy", "--storage", storage,
                   "--port", str(self.port)]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                command, cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        assert wait_for(lambda: "storage proxy for" in self.log.read_text(), 60), self.output()

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        """SIGTERM, as a cluster stops it: it finishes what is in flight and exits 0."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@pytest.fixture
def storage_proxies(tmp_path: Path):
    """start(storage) -> a running StorageProxy; any still running is killed after the test."""
    started: list[StorageProxy] = []

    def start(storage: str) -> StorageProxy:
        started.append(StorageProxy(storage, tmp_path))
        return started[-1]

    yield start
    for proxy in started:
        if proxy.process.poll() is None:
            proxy.process.kill()
            proxy.process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path: Path):
    """A real `mlflow server` on a SQLite backend."""
    server = MlflowServer(tmp_path / "server")
    server.start()
    yield server
    server.stop()


def tables(url: str) -> list[str]:
    """The tables of a database, read with SQLAlchemy (nothing of ours)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        return sqlalchemy.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def report_sections(page: str) -> dict[str, dict]:
    """Each <section id=...>: its text and the rows of its tables (parsed, not grepped)."""
    from html.parser import HTMLParser

    found: dict[str, dict] = {}

    class Reader(HTMLParser):
        current, row = "", None

        def handle_starttag(self, tag, attrs):
            if tag == "section":
                self.current = dict(attrs)["id"]
                found[self.current] = {"text": "", "rows": []}
            elif tag == "tr":
                self.row = []
            elif tag == "td" and self.row is not None:
                self.row.append("")

        def handle_endtag(self, tag):
            if tag == "tr" and self.row:
                found[self.current]["rows"].append(self.row)
                self.row = None

        def handle_data(self, data):
            if self.current:
                found[self.current]["text"] += data
            if self.row:
                self.row[-1] += data.strip()

    Reader().feed(page)
    return found
