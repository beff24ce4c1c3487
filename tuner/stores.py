"""Where a project's records live and how they are opened: Optuna storage, MLflow tracking
store, their defaults under ./mlruns, reachability checks and the local init lock."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from tuner.errors import UsageError

HOME = Path("mlruns")
STORAGE_SCHEMES = (
    "sqlite",
    "postgresql",
    "postgresql+psycopg",
    "postgresql+psycopg2",
    "mysql",
    "mysql+pymysql",
)


def default_storage() -> str:
    """SQLite under ./mlruns, as an absolute path: MLflow caches stores by URI, and a
    relative one would point at another folder once the process changes directory."""
    return f"sqlite:///{(HOME / 'optuna.db').absolute()}"


def default_tracking_uri() -> str:
    return f"sqlite:///{(HOME / 'mlflow.db').absolute()}"


def resolve_storage(url: str | None) -> str:
    url = url or default_storage()
    scheme = url.split(":", 1)[0]
    if scheme not in STORAGE_SCHEMES:
        raise UsageError(
            f"--storage {url!r}: unknown scheme {scheme!r}; expected "
            f"sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    return url


def resolve_tracking(uri: str | None) -> tuple[str, str | None]:
    """(tracking URI, artifact root or None): --tracking-uri, MLFLOW_TRACKING_URI, default."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if uri == default_tracking_uri():
        (HOME / "artifacts").mkdir(parents=True, exist_ok=True)
        return uri, (HOME / "artifacts").resolve().as_uri()
    return uri, None


def open_storage(url: str, heartbeat: int = 30, tracking_uri: str | None = None) -> RDBStorage:
    """RDB storage with heartbeats: a trial whose process died (SIGKILL, power loss) is
    failed after the grace period, its MLflow run closed as KILLED, and its params re-queued,
    instead of staying RUNNING forever. SQLite waits for a busy lock instead of failing."""
    retry = RetryHeartbeatStaleTrialCallback(max_retry=2)

    def on_stale(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id and tracking_uri:
            close_lost_run(tracking_uri, run_id, trial.number)
        retry(study, trial)

    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else None
    return RDBStorage(
        url,
        engine_kwargs=engine,
        heartbeat_interval=heartbeat,
        grace_period=4 * heartbeat,
        heartbeat_stale_trial_callback=on_stale,
    )


def close_lost_run(tracking_uri: str, run_id: str, number: int) -> None:
    """The run of a trial whose worker died: closed as KILLED by whoever noticed."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    client.set_tag(run_id, "tuner.state", "LOST")
    client.set_tag(run_id, "tuner.fail_reason", "its worker stopped sending heartbeats")
    client.update_run(run_id, name=f"trial-{number} lost")
    client.set_terminated(run_id, status="KILLED")


def check_tracking(uri: str) -> None:
    """The MLflow store answers before any trial runs (not after an hour of training)."""
    from mlflow import MlflowClient

    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as exc:  # bad scheme, unreachable server, not a database
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"--tracking-uri {uri!r}: cannot reach the MLflow store ({reason})"
        ) from None


def load_study(name: str, storage: str | None = None) -> optuna.Study:
    storage = resolve_storage(storage)
    names = optuna.get_all_study_names(storage)
    if name not in names:
        known = ", ".join(names) or "none yet"
        raise UsageError(f"--study {name!r}: no such study in {storage} (studies: {known})")
    return optuna.load_study(study_name=name, storage=storage)


@contextmanager
def store_lock(*urls: str) -> Iterator[None]:
    """Serialise first-time table creation and parent-run lookup between processes sharing
    local SQLite stores (two terminals, several workers): both would create the same tables
    or the same parent run otherwise. Remote stores need no file lock here."""
    if not any(url.startswith("sqlite:") for url in urls):
        yield
        return
    HOME.mkdir(parents=True, exist_ok=True)
    with open(HOME / ".init.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
