"""Talking to a database server or SQLite file directly: reading its tables within seconds,
the engine options a process's pool uses, and the lock processes take to set a store up."""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from tuner.errors import UsageError
from tuner.runtime.recovery import first_line
from tuner.storage.locations import HOME, sqlite_path

CONNECT_TIMEOUT_S = 10  # the up-front check only; a running sweep keeps the usual retries
# Connections one process keeps to a database server: its trials' reads and writes, and
# Optuna's heartbeat thread (docs/fleets.md: PostgreSQL's max_connections for a fleet)
POOL_SIZE, POOL_OVERFLOW = 2, 1


def connect_args(url: str) -> dict[str, Any]:
    if url.startswith(("postgresql", "mysql")):
        return {"connect_timeout": CONNECT_TIMEOUT_S}
    return {}


def has_table(url: str, table: str, flag: str) -> bool:
    """Whether the database holds `table`, asked within CONNECT_TIMEOUT_S."""
    return table in tables(url, flag)


def tables(url: str, flag: str, counted: tuple[str, ...] = ()) -> dict[str, int]:
    """The database's tables, with the row count of those in `counted`; read only, within
    CONNECT_TIMEOUT_S."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url, connect_args=connect_args(url))
    except Exception as exc:  # no driver, malformed URL
        raise UsageError(f"{flag} {url!r}: cannot open ({first_line(exc)})") from None
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
        raise_if_disk_full(url, exc)
        raise UsageError(f"{flag} {url!r}: cannot open ({first_line(exc)})") from None
    finally:
        engine.dispose()


def raise_if_disk_full(url: str, exc: Exception) -> None:
    """A local SQLite file in WAL mode cannot be opened on a full disk (its `-shm` file
    cannot be made: "disk I/O error"): the machine's failure, not the input's."""
    path = sqlite_path(url)
    if path is not None and path.parent.is_dir() and os.statvfs(path.parent).f_bavail == 0:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path.parent)) from exc


def check_creatable(path: Path, flag: str, url: str) -> None:
    """The first folder of `path` that exists is a folder we may write in."""
    parent = path.parent.absolute()
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"{flag} {url!r}: cannot create {path} ({parent} is not writable)")


def engine_options(
    url: str, pooled: bool, pool_size: int = POOL_SIZE, overflow: int = POOL_OVERFLOW
) -> dict[str, Any]:
    """SQLAlchemy's engine options: SQLite waits for a busy lock instead of failing; a
    database server gets a bounded pool, or none (each call opens and closes a connection)."""
    import sqlalchemy

    sqlite = url.startswith("sqlite")
    connect = {"timeout": 120} if sqlite else connect_args(url)
    if not pooled:
        return {"connect_args": connect, "poolclass": sqlalchemy.pool.NullPool}
    if sqlite:
        return {"connect_args": connect}
    return {"pool_size": pool_size, "max_overflow": overflow}


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
        url, connect_args=connect_args(url), poolclass=sqlalchemy.pool.NullPool
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
