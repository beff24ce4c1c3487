"""Optuna's storage: reading the studies it holds (creating nothing), and opening it for a
sweep with heartbeats and a bounded pool, directly or through the gRPC storage proxy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage

from tuner.errors import UsageError
from tuner.runtime.recovery import first_line
from tuner.storage.databases import check_creatable, engine_options, tables
from tuner.storage.locations import absent, resolve_storage, sqlite_path

StaleHandler = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]


def _optuna_ready(url: str) -> bool:
    """Optuna's tables exist and are stamped: opening the storage then writes nothing
    (while a first sweep is still making them, a reader's RDBStorage would stamp them too,
    and the sweep's own stamp would fail)."""
    stamps = ("version_info", "alembic_version")
    found = tables(url, "--storage", stamps)
    return "studies" in found and all(found.get(name, 0) > 0 for name in stamps)


def read_studies(url: str) -> dict[str, optuna.study.StudySummary]:
    """The studies of an Optuna storage by name; creates nothing (no file, no tables)."""
    path = sqlite_path(url)
    if absent(url):
        if path is not None:
            check_creatable(path, "--storage", url)
        return {}
    if not _optuna_ready(url):
        return {}
    try:
        summaries = optuna.get_all_study_summaries(_reader(url), include_best_trial=False)
    except Exception as exc:
        raise UsageError(
            f"--storage {url!r}: cannot read the Optuna store ({first_line(exc)})"
        ) from None
    return {summary.study_name: summary for summary in summaries}


def _reader(url: str) -> RDBStorage:
    """Storage for a few reads, without a pool: each read's connection closes after it (a
    worker reads the store a few times as it starts, and a pooled connection would stay open
    to the database server for the worker's whole life)."""
    return RDBStorage(url, engine_kwargs=engine_options(url, pooled=False))


def set_study_attr(url: str, name: str, key: str, value: Any) -> None:
    """One attribute of a stored study (a writer process records a model's version)."""
    storage = _reader(url)
    storage.set_study_user_attr(storage.get_study_id_from_name(name), key, value)


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
        raise UsageError(f"--storage {storage!r}: cannot read ({first_line(exc)})") from None


def open_storage(
    url: str,
    heartbeat: int = 30,
    on_stale: StaleHandler | None = None,
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
        engine_kwargs=engine_options(url, pooled=proxy is None),
        heartbeat_interval=heartbeat,
        grace_period=4 * heartbeat,
        heartbeat_stale_trial_callback=on_stale,
    )
    if proxy is None:
        return direct
    from tuner.storage.proxy import open_proxied  # gRPC is loaded only for a proxy

    return open_proxied(proxy, direct)
