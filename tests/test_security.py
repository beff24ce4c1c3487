"""The three security lines: a file never chooses which code runs, a name never becomes a
path outside the project or breaks a query, and a password is never printed or recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, quote_plus

import optuna
import pytest
from mlflow import MlflowClient

import tuner
from tests.conftest import REPO, TINY_SPACE, make_long_csv, run_cli
from tuner.contract.checkpoints import save_checkpoint
from tuner.tasks.forecasting.task import DEFAULTS, TASK

ZEN = "Beautiful is better than ugly"
SETTINGS = {**DEFAULTS, "input_len": 12, "horizon": 6, "hidden_size": 4, "max_epochs": 1}


def _checkpoint(path: Path, task: str, meta: dict | None = None) -> Path:
    model = TASK.build_model(SETTINGS, None)
    return save_checkpoint(path, model, task, SETTINGS, meta or {})


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("command", ["predict", "finetune"])
def test_a_checkpoint_never_chooses_the_code_that_runs(workdir, command):
    """A checkpoint naming a module (Python's own `this`, or a package planted beside it)
    is refused before that module is imported; the user's --task is the only way."""
    package = workdir / "plantedpkg"
    package.mkdir()
    marker = workdir / "planted-code-ran"
    (package / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    for task in ("this.x", "plantedpkg.task"):
        _checkpoint(workdir / "crafted.ckpt", task)
        done = run_cli(workdir, command, "--from", "crafted.ckpt", "--data", str(REPO / "x.csv"))
        assert done.returncode == 2, done.stderr
        assert f"task {task!r}" in done.stderr and "not a registered task" in done.stderr
        assert "--task" in done.stderr  # says how to opt in, on purpose
        assert ZEN not in done.stdout + done.stderr
        assert not marker.exists()
    assert not (workdir / "mlruns").exists()


def test_a_name_from_a_checkpoint_stays_inside_the_project(workdir):
    """A fine-tune names its study and model after the source; a crafted source study name
    full of '../' is cleaned into the name rule, and every file lands under mlruns/."""
    project = workdir / "project"
    project.mkdir()
    outside = _tree(workdir)
    make_long_csv(project / "a.csv", n_series=1, length=60)
    meta = {"study": "../../escape", "data_args": {"data": "a.csv"}}
    _checkpoint(project / "crafted.ckpt", "forecasting", meta)
    done = run_cli(project, "finetune", "--from", "crafted.ckpt", "--max-epochs", "2", "--quiet")
    assert done.returncode == 0, done.stderr
    assert _tree(workdir) - outside <= {f"project/{p}" for p in _tree(project)}
    created = {p.split("/")[0] for p in _tree(project)}
    assert created == {"a.csv", "crafted.ckpt", "mlruns"}
    client = MlflowClient(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    assert client.get_experiment_by_name("escape-ft-a") is not None
    names = sorted(m.name for m in client.search_registered_models())
    assert names == ["escape-finetuned", "escape-finetuned-scratch"]


def test_a_study_stored_under_an_older_name_stays_readable(tiny_space, monkeypatch, capsys):
    """A study made before the name rule, with a quote and a slash in its name: reading it
    works, its MLflow queries do not break, and its report folder is the cleaned name."""
    old = "o'brien v1"
    with monkeypatch.context() as before_the_rule:
        before_the_rule.setattr(
            "tuner.study._prepare.check_name", lambda name, flag="--study": name
        )
        tuner.search("forecasting", trials=1, space=str(tiny_space), study=old, quiet=True)
    from tuner.cli import main

    for argv in (["best", "--study", old], ["trials", "--study", old]):
        assert main(argv) == 0
    assert main(["report", "--study", old]) == 0
    out = capsys.readouterr().out
    assert "mlruns/reports/o_brien_v1/report.html" in out
    assert Path("mlruns/reports/o_brien_v1/report.html").is_file()
    assert not Path("mlruns/reports/o'brien").exists()


PASSWORD = (
    "s3cret-pw/ 'q\"?#:%&=+@x"  # percent-encoded in the URL, as libpq and SQLAlchemy read it
)


def _with_password(url: str) -> str:
    return url.replace("postgres@", f"postgres:{quote(PASSWORD, safe='')}@")


def test_passwords_in_store_urls_are_never_printed_or_recorded(workdir, postgres_urls):
    """PostgreSQL here trusts local connections, so any password works: what matters is
    that it shows up nowhere, in the summary, the resume hint, errors or the records."""
    storage, tracking = (_with_password(url) for url in postgres_urls)
    (workdir / "tiny.yaml").write_text(TINY_SPACE)
    stores = ["--storage", storage, "--tracking-uri", tracking]
    shared = ["--artifact-root", str(workdir / "shared")]
    search = ["search", "--task", "forecasting", "--space", "tiny.yaml", "--study", "pw"]
    done = run_cli(workdir, *search, "--trials", "1", "--quiet", *stores, *shared)
    assert done.returncode == 0, done.stderr
    assert not _shows_secret(done.stdout + done.stderr) and "postgres:***@" in done.stdout
    for argv in (["best", "--study", "pw"], ["trials", "--study", "pw"], ["best", "--study", "x"]):
        shown = run_cli(workdir, *argv, *stores)
        assert not _shows_secret(shown.stdout + shown.stderr)
    slow = [*search[:-1], "pw-stop", "--trials", "2", "--set", "max_epochs=400", *stores, *shared]
    interrupted = _interrupt(workdir, slow)
    assert "resume with: tuner search" in interrupted and "postgres:***@" in interrupted
    assert not _shows_secret(interrupted)
    client = MlflowClient(tracking)
    for run in client.search_runs([client.get_experiment_by_name("pw").experiment_id]):
        recorded = {**run.data.params, **run.data.tags}
        assert not [key for key, value in recorded.items() if _shows_secret(str(value))]
    study = optuna.load_study(study_name="pw", storage=storage)
    assert not _shows_secret(str(study.user_attrs))


def _shows_secret(text: str) -> bool:
    return any(form in text for form in (PASSWORD, quote(PASSWORD, safe=""), "s3cret"))


def _interrupt(workdir: Path, argv: list[str]) -> str:
    """Start the CLI, wait until a trial runs, send Ctrl-C; returns what it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tuner.cli", *argv],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    storage = argv[argv.index("--storage") + 1]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _running(storage):
        time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    return output


def _running(storage: str) -> bool:
    try:
        trials = optuna.load_study(study_name="pw-stop", storage=storage).trials
    except Exception:  # not created yet
        return False
    return any(t.state.name == "RUNNING" for t in trials)


# every printable character but whitespace other than the space
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))
RAW_SAFE = PRINTABLE.replace("@", "")  # SQLAlchemy reads a raw password up to the first @


def _url_forms(secret: str) -> list[str]:
    """Every way libpq, SQLAlchemy, MLflow and gRPC take a secret in a URL."""
    encoded, plus = quote(secret, safe=""), quote_plus(secret)
    raw = secret.replace("@", "")
    return [
        f"postgresql://user:{encoded}@db.example:5432/optuna",
        f"postgresql+psycopg://user:{encoded}@db.example/optuna?sslmode=require",
        f"postgresql://user:{raw}@db.example/optuna",
        f"postgres://user:{encoded}@db.example/optuna",
        f"postgresql://db.example/optuna?user=me&password={encoded}",
        f"postgresql:///optuna?host=/run/postgresql&password={plus}",
        f"mysql+pymysql://user:{encoded}@db.example:3306/optuna",
        f"mssql+pyodbc://user:{encoded}@dsn_name",
        f"http://user:{encoded}@mlflow.example:5000",
        f"https://user:{encoded}@mlflow.example/prefix?x=1",
        f"https://mlflow.example/?token={encoded}",
        f"https://mlflow.example/?api_key={plus}&other=1",
        f"grpc://user:{encoded}@proxy.example:13000",
        f"postgresql://user:{encoded}@[::1]:5432/optuna",
    ]


@pytest.mark.parametrize("secret", [PRINTABLE, RAW_SAFE, "zq9pw", "a'b\"c d"])
def test_every_url_form_is_parsed_and_its_secret_hidden_wherever_it_is_printed(secret):
    """The secret, however the URL carries it, is hidden in the URL, in its repr (an error's
    quoting) and in a driver's message that repeats it, encoded or decoded."""
    from tuner.redact import hide, remember_url

    forms = _url_forms(secret)
    for url in forms:
        remember_url(url)
        texts = [url, repr(url), f"error: --storage {url!r}: cannot open", f"password={secret!r}"]
        for text in texts:
            shown = hide(text)
            assert "***" in shown, (url, shown)
            for written in {secret, quote(secret, safe=""), quote_plus(secret)}:
                assert written not in shown, (url, shown)


def test_a_raw_at_sign_in_a_password_hides_what_a_driver_reads_as_the_host():
    from tuner.redact import hide, remember_url

    remember_url("postgresql://postgres:a@SEKRET9@127.0.0.1:5432/db")
    shown = hide("failed to resolve host 'SEKRET9@127.0.0.1' for postgres:a@SEKRET9@...")
    assert "SEKRET9" not in shown and "127.0.0.1" in shown, shown


STORE_FLAGS = {  # each command with the store flag whose URL it reports
    "best": ["best", "--study", "s", "--storage"],
    "trials": ["trials", "--study", "s", "--storage"],
    "ui": ["ui", "--study", "s", "--tracking-uri"],
    "storage-proxy": ["storage-proxy", "--port", "1", "--storage"],
    "search": ["search", "--task", "forecasting", "--trials", "1", "--quiet", "--storage"],
}


@pytest.mark.parametrize("command", sorted(STORE_FLAGS))
def test_no_command_prints_a_secret_of_a_store_it_cannot_reach(workdir, command, capsys):
    """Each command, given a store URL whose password holds every printable character (in
    the userinfo and as a query parameter): one line, exit 2, nothing shown, nothing made."""
    from tuner.cli import main

    for url in (
        f"postgresql://u:{quote(PRINTABLE, safe='')}@127.0.0.1:1/db",
        f"postgresql://u@127.0.0.1:1/db?password={quote_plus(PRINTABLE)}",
    ):
        assert main([*STORE_FLAGS[command], url]) == 2
        printed = capsys.readouterr()
        assert not any(
            form in printed.out + printed.err
            for form in (PRINTABLE, quote(PRINTABLE, safe=""), quote_plus(PRINTABLE))
        ), printed
        assert "***" in printed.err and len(printed.err.splitlines()) == 1, printed.err
    assert not (workdir / "mlruns").exists()
