"""Where a project's records live and how they are opened: Optuna storage, MLflow tracking
store, their defaults under ./mlruns, reachability checks and the local init lock.

Checking and reading never create anything: a SQLite file that does not exist yet means
"no studies yet", a server that does not answer is reported within seconds
(CONNECT_TIMEOUT_S), and folders and databases are only made by `prepare_local_folders`
once every input has been checked.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import optuna
from optuna.storages import BaseStorage, RDBStorage

from tuner.config import keys
from tuner.errors import UsageError
from tuner.storage.sqlite_wal import use_wal

HOME = Path("mlruns")
STORAGE_SCHEMES = (
    "sqlite",
    "postgresql",
    "postgresql+psycopg",
    "postgresql+psycopg2",
    "mysql",
    "mysql+pymysql",
)
DATABASE_PREFIXES = ("postgresql", "mysql", "mssql")
CONNECT_TIMEOUT_S = 10  # the up-front check only; a running sweep keeps the usual retries
# Connections one process keeps to a database server: its trials' reads and writes, and
# Optuna's heartbeat thread (README: PostgreSQL's max_connections for a fleet)
POOL_SIZE, POOL_OVERFLOW = 2, 1


def default_storage() -> str:
    """SQLite under ./mlruns, as an absolute path: MLflow caches stores by URI, and a
    relative one would point at another folder once the process changes directory."""
    return f"sqlite:///{(HOME / 'optuna.db').absolute()}"


def default_tracking_uri() -> str:
    return f"sqlite:///{(HOME / 'mlflow.db').absolute()}"


def resolve_storage(url: str | None) -> str:
    url = url or default_storage()
    scheme = url.split(":", 1)[0]
    if scheme == "grpc":
        raise UsageError(
            f"--storage {url!r}: a storage proxy carries trials only; pass the database as "
            f"--storage (heartbeats and the start-up lock need it) and the proxy as "
            f"--storage-proxy {url}"
        )
    if scheme not in STORAGE_SCHEMES or "://" not in url:
        raise UsageError(
            f"--storage {url!r}: unknown scheme {scheme!r}; expected "
            f"sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    return url


def resolve_tracking(uri: str | None, artifact_root: str | None = None) -> tuple[str, str | None]:
    """(tracking URI, artifact root or None): --tracking-uri, MLFLOW_TRACKING_URI, default;
    --artifact-root, or mlruns/artifacts beside the default store."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if artifact_root:
        return uri, _as_uri(artifact_root)
    if uri == default_tracking_uri():
        return uri, (HOME / "artifacts").absolute().as_uri()
    return uri, None


def _as_uri(root: str) -> str:
    """A folder (a shared mount) as an absolute file:// URI; any URI as it is."""
    if urlparse(root).scheme:
        return root.rstrip("/")
    return Path(root).absolute().as_uri()


def is_shared_tracking(uri: str) -> bool:
    """A tracking store other hosts write to as well: a database server or an MLflow
    server (a sqlite:/// file is one host's)."""
    return uri.startswith((*DATABASE_PREFIXES, "http://", "https://"))


def host_local(location: str) -> bool:
    """An artifact location that names this host's disk (a path or file:// URI)."""
    return urlparse(location).scheme in ("", "file")


def sqlite_path(url: str) -> Path | None:
    """The database file of a sqlite:/// URL, None for any other URL."""
    return Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None


def _absent(url: str) -> bool:
    """A SQLite store that does not exist yet (no file, or an empty one): nothing in it."""
    path = sqlite_path(url)
    return path is not None and (not path.is_file() or path.stat().st_size == 0)


def prepare_local_folders(storage: str, tracking_uri: str, artifact_root: str | None) -> None:
    """Make the folders the local stores need, their SQLite files in WAL mode (tuner.storage.sqlite_wal);
    called once every input has been checked."""
    for url in (storage, tracking_uri):
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            use_wal(path)
    if artifact_root and artifact_root.startswith("file://"):
        Path(artifact_root[len("file://") :]).mkdir(parents=True, exist_ok=True)


# ------------------------------------------------------------ checks that create nothing


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _connect_args(url: str) -> dict[str, Any]:
    if url.startswith(("postgresql", "mysql")):
        return {"connect_timeout": CONNECT_TIMEOUT_S}
    return {}


def _has_table(url: str, table: str, flag: str) -> bool:
    """Whether the database holds `table`, asked within CONNECT_TIMEOUT_S."""
    return table in _tables(url, flag)


def _tables(url: str, flag: str, counted: tuple[str, ...] = ()) -> dict[str, int]:
    """The database's tables, with the row count of those in `counted`; read only, within
    CONNECT_TIMEOUT_S."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url, connect_args=_connect_args(url))
    except Exception as exc:  # no driver, malformed URL
        raise UsageError(f"{flag} {url!r}: cannot open ({_first_line(exc)})") from None
    try:
        names = sqlalchemy.inspect(engine).get_table_names()
        with engine.connect() as connection:
            return {
                name: connection.execute(
                    sqlalchemy.text(f"SELECT COUNT(*) FROM {name}")  # a name of our own list
                ).scalar_one()
                if name in counted
                else -1
                for name in names
            }
    except Exception as exc:  # unreachable server, bad credentials, not a database
        _raise_if_disk_full(url, exc)
        raise UsageError(f"{flag} {url!r}: cannot open ({_first_line(exc)})") from None
    finally:
        engine.dispose()


def _raise_if_disk_full(url: str, exc: Exception) -> None:
    """A local SQLite file in WAL mode cannot be opened on a full disk (its `-shm` file
    cannot be made: "disk I/O error"): the machine's failure, not the input's."""
    path = sqlite_path(url)
    if path is not None and path.parent.is_dir() and os.statvfs(path.parent).f_bavail == 0:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path.parent)) from exc


def _optuna_ready(url: str) -> bool:
    """Optuna's tables exist and are stamped: opening the storage then writes nothing
    (while a first sweep is still making them, a reader's RDBStorage would stamp them too,
    and the sweep's own stamp would fail)."""
    stamps = ("version_info", "alembic_version")
    tables = _tables(url, "--storage", stamps)
    return "studies" in tables and all(tables.get(name, 0) > 0 for name in stamps)


def _check_creatable(path: Path, flag: str, url: str) -> None:
    """The first folder of `path` that exists is a folder we may write in."""
    parent = path.parent.absolute()
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"{flag} {url!r}: cannot create {path} ({parent} is not writable)")


def read_studies(url: str) -> dict[str, optuna.study.StudySummary]:
    """The studies of an Optuna storage by name; creates nothing (no file, no tables)."""
    path = sqlite_path(url)
    if _absent(url):
        if path is not None:
            _check_creatable(path, "--storage", url)
        return {}
    if not _optuna_ready(url):
        return {}
    try:
        summaries = optuna.get_all_study_summaries(_reader(url), include_best_trial=False)
    except Exception as exc:
        raise UsageError(
            f"--storage {url!r}: cannot read the Optuna store ({_first_line(exc)})"
        ) from None
    return {summary.study_name: summary for summary in summaries}


def _reader(url: str) -> RDBStorage:
    """Storage for a few reads, without a pool: each read's connection closes after it (a
    worker reads the store a few times as it starts, and a pooled connection would stay open
    to the database server for the worker's whole life)."""
    return RDBStorage(url, engine_kwargs=_engine(url, pooled=False))


def check_tracking(uri: str, must_exist: bool = False) -> None:
    """The MLflow store answers before any trial runs (not after an hour of training), within
    seconds; one that does not exist yet (a SQLite file, or a database without MLflow's
    tables) is made later by a search, and refused with `must_exist` (reading commands)."""
    path = sqlite_path(uri)
    if path is not None and _absent(uri):
        _check_creatable(path, "--tracking-uri", uri)
        _refuse_if(must_exist, uri)
        return
    if uri.startswith(DATABASE_PREFIXES) and not _has_table(uri, "experiments", "--tracking-uri"):
        _refuse_if(must_exist, uri)
        return  # reachable, and MLflow makes its tables on first use
    try:
        with bounded_http():
            from tuner.tracking import TrackingStore

            TrackingStore(uri).answers()
    except Exception as exc:  # bad scheme, unreachable server, not a database
        raise UsageError(
            f"--tracking-uri {uri!r}: cannot reach the MLflow store ({_first_line(exc)})"
        ) from None


def _refuse_if(must_exist: bool, uri: str) -> None:
    if must_exist:
        raise UsageError(
            f"--tracking-uri {uri!r}: no MLflow store there yet (run `tuner search` first, "
            f"or point --tracking-uri at the project's store)"
        )


def check_artifact_home(uri: str, artifact_root: str | None, experiment: str) -> None:
    """Models a host logs must reach every other host: a database tracking store keeps only
    artifact *locations*, so it needs an --artifact-root every host reads; an experiment made
    earlier with a host-local location would strand this sweep's models on this host."""
    if uri.startswith(DATABASE_PREFIXES) and artifact_root is None:
        raise UsageError(
            f"--tracking-uri {uri!r}: a database keeps only where models are, and each "
            f"host would keep them on its own disk; add --artifact-root URI that every host "
            f"reads (s3://BUCKET/PATH, or a shared mount), or run one `mlflow server "
            f"--backend-store-uri {uri} --artifacts-destination URI` and pass "
            f"--tracking-uri http://HOST:5000"
        )
    if not is_shared_tracking(uri) or not _has_experiments(uri):
        return
    from tuner.tracking import TrackingStore

    location = TrackingStore(uri).artifact_location(experiment)
    if location is None or not host_local(location):
        return
    if artifact_root is not None and location.startswith(artifact_root + "/"):
        return
    raise UsageError(
        f"--study {experiment!r}: its MLflow experiment keeps artifacts at {location}, on "
        f"the disk of the host that made it, out of reach of the others; use a new --study "
        f"name, or rename that experiment (`mlflow experiments rename --experiment-id ID "
        f"--new-name OLD`) so this study makes a new one under the shared artifact root"
    )


def _has_experiments(uri: str) -> bool:
    """The store holds MLflow's tables (asked without making them)."""
    if uri.startswith(DATABASE_PREFIXES):
        return _has_table(uri, "experiments", "--tracking-uri")
    return True


def check_tracking_exists(uri: str) -> None:
    """For commands that only read: a store that does not exist yet is an error."""
    check_tracking(uri, must_exist=True)


@contextmanager
def bounded_http() -> Iterator[None]:
    """MLflow's HTTP client without retries and with a short timeout, for one check: by
    default it retries for minutes before saying a server is down."""
    names = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(zip(names, ("0", str(CONNECT_TIMEOUT_S)), strict=True))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_study(name: str, storage: str | None = None) -> optuna.Study:
    """A stored study, for reading; a missing study or unreadable store is one line."""
    storage = resolve_storage(storage)
    studies = read_studies(storage)
    if name not in studies:
        known = ", ".join(studies) or "none yet"
        raise UsageError(f"--study {name!r}: no such study in {storage} (studies: {known})")
    try:
        return optuna.load_study(study_name=name, storage=_reader(storage))
    except Exception as exc:
        raise UsageError(f"--storage {storage!r}: cannot read ({_first_line(exc)})") from None


# ------------------------------------------------------------ opening for a sweep


def open_storage(
    url: str,
    heartbeat: int = 30,
    tracking_uri: str | None = None,
    max_retries: int = 10,
    proxy: str | None = None,
) -> BaseStorage:
    """RDB storage with heartbeats: a trial whose process died (SIGKILL, power loss) is
    failed after the grace period, its MLflow run closed as KILLED, and its params re-queued,
    instead of staying RUNNING forever. SQLite waits for a busy lock instead of failing. On
    a database server a process holds at most POOL_SIZE + POOL_OVERFLOW connections
    (SQLAlchemy's default is 15: a fleet of workers would exhaust PostgreSQL's 100). With a
    `proxy` (grpc://HOST:PORT) the trials' traffic goes through Optuna's storage proxy and
    only the heartbeats reach the database, on a connection opened for each."""
    direct = RDBStorage(
        url,
        engine_kwargs=_engine(url, pooled=proxy is None),
        heartbeat_interval=heartbeat,
        grace_period=4 * heartbeat,
        heartbeat_stale_trial_callback=stale_trial_handler(tracking_uri, max_retries),
    )
    if proxy is None:
        return direct
    from tuner.storage.proxy import open_proxied

    return open_proxied(proxy, direct)


def open_for_proxy(url: str, pool_size: int, overflow: int) -> RDBStorage:
    """The database behind `tuner storage-proxy`: one pool that every worker's trials share."""
    return RDBStorage(url, engine_kwargs=_engine(url, True, pool_size, overflow))


def _engine(
    url: str, pooled: bool, pool_size: int = POOL_SIZE, overflow: int = POOL_OVERFLOW
) -> dict[str, Any]:
    """SQLAlchemy's engine options: SQLite waits for a busy lock instead of failing; a
    database server gets a bounded pool, or none (each call opens and closes a connection)."""
    import sqlalchemy

    sqlite = url.startswith("sqlite")
    connect = {"timeout": 120} if sqlite else _connect_args(url)
    if not pooled:
        return {"connect_args": connect, "poolclass": sqlalchemy.pool.NullPool}
    if sqlite:
        return {"connect_args": connect}
    return {"pool_size": pool_size, "max_overflow": overflow}


def stale_trial_handler(
    tracking_uri: str | None, max_retries: int = 10
) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """What happens to a trial whose worker died: its MLflow run is closed as KILLED and
    its params are queued again (up to `max_retries` times; the retry resumes from the dead
    trial's last checkpoint: tuner.training.preemption)."""

    def on_stale(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        from tuner.training.preemption import requeue

        run_id = trial.user_attrs.get(keys.RUN_ID)
        if run_id and tracking_uri:
            from tuner.tracking import TrackingStore

            TrackingStore(tracking_uri).close_lost_run(run_id, trial.number)
        requeue(study, trial, max_retries)

    return on_stale


@contextmanager
def store_lock(*urls: str) -> Iterator[None]:
    """Serialise first-time table creation, study creation and the parent-run lookup between
    processes that start together (two terminals, several workers, N pods of a Kubernetes
    Job): each would create the same tables (PostgreSQL then fails on its catalog's unique
    index) or the same parent run otherwise. Local SQLite stores take a file lock, database
    servers an advisory lock, taken in the order given (the same in every process)."""
    with ExitStack() as stack:
        if any(url.startswith("sqlite:") for url in urls):
            stack.enter_context(_file_lock(HOME / ".init.lock"))
        for url in dict.fromkeys(urls):
            if url.startswith(("postgresql", "mysql")):
                stack.enter_context(_database_lock(url))
        yield


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# the advisory lock every tuner process takes to set a store up: (take, give back) per server
ADVISORY_LOCK = {
    "postgresql": ("SELECT pg_advisory_lock(1819571309)", "SELECT pg_advisory_unlock(1819571309)"),
    "mysql": ("SELECT GET_LOCK('lstm-tuner-init', 600)", "SELECT RELEASE_LOCK('lstm-tuner-init')"),
}


@contextmanager
def _database_lock(url: str) -> Iterator[None]:
    """A session-level advisory lock on the database server: held while this connection is
    open, released by the server if the process dies."""
    import sqlalchemy

    take, give = ADVISORY_LOCK["postgresql" if url.startswith("postgresql") else "mysql"]
    engine = sqlalchemy.create_engine(
        url, connect_args=_connect_args(url), poolclass=sqlalchemy.pool.NullPool
    )
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(take))
            connection.commit()
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text(give))
                connection.commit()
    finally:
        engine.dispose()
