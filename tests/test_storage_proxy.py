"""Optuna's gRPC storage proxy (`tuner storage-proxy`, `--storage-proxy`): mistakes are
refused before anything is created, a proxy in front of another database than --storage is
refused, and a sweep through the proxy keeps its heartbeats on the database."""

from __future__ import annotations

import optuna
import pytest
import sqlalchemy

from tests.conftest import TINY_SPACE, free_port, run_cli
from tuner.cli import main


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
    assert all("mlflow_run_id" in t.user_attrs for t in trials)
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
