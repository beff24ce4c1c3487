"""Optuna's gRPC storage proxy (`tuner storage-proxy`, `--storage-proxy`): mistakes are
refused before anything is created, a proxy in front of another database than --storage is
refused, and a sweep through the proxy keeps its heartbeats on the database."""

from __future__ import annotations

import os
import subprocess
import sys

import optuna
import pytest
import sqlalchemy

from tests.conftest import REPO, TINY_SPACE, free_port, run_cli, wait_for
from tuner.cli import main
from tuner.config.trial_attrs import of as attrs_of


def _argv(workdir, *extra: str, trials: int = 2) -> list[str]:
    (workdir / "tiny.yaml").write_text(TINY_SPACE)
    return ["search", "--task", "forecasting", "--space", "tiny.yaml", "--study", "p",
            "--trials", str(trials), "--quiet", *extra]  # fmt: skip


def _refused(workdir, capsys, *extra: str) -> str:
    """The CLI, in this process, refuses the flags with exit 2; what it printed."""
    assert main(_argv(workdir, *extra)) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--storage-proxy", "127.0.0.1:13000"], "expected grpc://HOST:PORT"),
        (["--storage-proxy", "grpc://127.0.0.1"], "expected grpc://HOST:PORT"),
        (["--storage-proxy", "grpc://127.0.0.1:99999"], "expected grpc://HOST:PORT"),
        (["--storage", "grpc://127.0.0.1:13000"], "pass the database as --storage"),
    ],
)
def test_a_malformed_proxy_address_is_refused_and_nothing_is_made(workdir, capsys, extra, says):
    assert says in _refused(workdir, capsys, *extra)
    assert not (workdir / "mlruns").exists()


def test_a_proxy_that_does_not_answer_is_refused_before_any_trial(workdir, capsys):
    said = _refused(workdir, capsys, "--storage-proxy", f"grpc://127.0.0.1:{free_port()}")
    assert "no storage proxy answers there" in said
    assert "tuner storage-proxy --storage" in said  # says how to start one
    assert not (workdir / "mlruns").exists()


def test_a_proxy_in_front_of_another_database_is_refused(workdir, capsys, storage_proxies):
    """Heartbeats on one database and trials on another would fail each other's trials."""
    elsewhere = f"sqlite:///{workdir / 'elsewhere.db'}"
    optuna.create_study(study_name="theirs", storage=elsewhere)
    proxy = storage_proxies(elsewhere)
    said = _refused(workdir, capsys, "--storage-proxy", proxy.address)
    assert "serves another database than --storage" in said and "['theirs']" in said
    assert not (workdir / "mlruns").exists()
    assert proxy.stop() == 0, proxy.output()


def test_a_sweep_through_the_proxy_keeps_its_heartbeats_on_the_database(workdir, storage_proxies):
    storage = f"sqlite:///{workdir / 'mlruns' / 'optuna.db'}"
    (workdir / "mlruns").mkdir()
    proxy = storage_proxies(storage)
    argv = _argv(workdir, "--storage", storage, "--storage-proxy", proxy.address, trials=3)
    result = run_cli(workdir, *argv)
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(study_name="p", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert all("mlflow_run_id" in attrs_of(t) for t in trials)
    engine = sqlalchemy.create_engine(storage)
    with engine.connect() as connection:
        beats = connection.execute(sqlalchemy.text("SELECT trial_id FROM trial_heartbeats"))
        assert sorted(row[0] for row in beats) == sorted(t._trial_id for t in trials)
    engine.dispose()
    assert proxy.stop() == 0, proxy.output()
    assert "storage proxy stopped" in proxy.output()


def test_the_proxy_command_refuses_a_port_in_use_and_a_bad_storage(workdir, storage_proxies):
    proxy = storage_proxies(f"sqlite:///{workdir / 'a.db'}")
    taken = run_cli(workdir, "storage-proxy", "--storage", f"sqlite:///{workdir / 'b.db'}",
                    "--port", str(proxy.port))  # fmt: skip
    assert taken.returncode == 2, taken.stderr
    assert f"--port {proxy.port}: cannot listen there" in taken.stderr
    bad = run_cli(workdir, "storage-proxy", "--storage", "postgresql://u:secret@127.0.0.1:1/x")
    assert bad.returncode == 2 and "cannot open" in bad.stderr
    assert "secret" not in bad.stderr
    assert not (workdir / "b.db").exists()
    assert proxy.stop() == 0


def test_a_lost_proxy_stops_the_sweep_in_one_line_and_the_rerun_settles_it(
    workdir, storage_proxies
):
    """The proxy goes away mid-trial: one line, exit 1; the trial it left RUNNING is failed
    and re-queued by the rerun through a new proxy, which ends the study exact."""
    storage = f"sqlite:///{workdir / 'mlruns' / 'optuna.db'}"
    (workdir / "mlruns").mkdir()
    proxy = storage_proxies(storage)
    slow = TINY_SPACE.replace("max_epochs: 2", "max_epochs: 400")
    (workdir / "slow.yaml").write_text(slow)
    argv = ["search", "--task", "forecasting", "--space", "slow.yaml", "--study", "p",
            "--trials", "2", "--quiet", "--storage", storage]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "tuner.cli", *argv, "--storage-proxy", proxy.address],
        cwd=workdir, env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip

    def training() -> bool:
        try:
            trials = optuna.load_study(study_name="p", storage=storage).trials
        except KeyError:
            return False
        return bool(trials) and trials[0].intermediate_values != {}

    assert wait_for(lambda: process.poll() is not None or training()), process.communicate()
    proxy.process.kill()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    assert err.startswith("error: the sweep stopped: the storage proxy stopped answering"), err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert [t.state.name for t in optuna.load_study(study_name="p", storage=storage).trials] == [
        "RUNNING"  # the proxy took the last word with it; the rerun settles it
    ]
    again = storage_proxies(storage)
    fast = ["--set", "max_epochs=2", "--allow-changes", "--storage-proxy", again.address]
    rerun = run_cli(workdir, *argv, *fast)
    assert rerun.returncode == 0, rerun.stderr
    states = [t.state.name for t in optuna.load_study(study_name="p", storage=storage).trials]
    assert states.count("COMPLETE") == 2 and "RUNNING" not in states, states
    assert again.stop() == 0


def test_a_proxy_with_no_studies_in_front_of_another_database_is_caught_once_opened(
    workdir, capsys, storage_proxies
):
    """Nothing to compare before the study exists: once it is opened through the proxy, the
    database must hold it under the same id."""
    (workdir / "mlruns").mkdir()
    storage = f"sqlite:///{workdir / 'mlruns' / 'optuna.db'}"
    optuna.create_study(study_name="ours", storage=storage)
    proxy = storage_proxies(f"sqlite:///{workdir / 'empty.db'}")
    said = _refused(workdir, capsys, "--storage", storage, "--storage-proxy", proxy.address)
    assert "the proxy serves another database than --storage (study 'p'" in said
    assert "p" not in optuna.get_all_study_names(storage)  # the database was left alone
    assert proxy.stop() == 0
