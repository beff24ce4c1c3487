"""Checks of an MLflow tracking store that create nothing: it answers within seconds
(not after an hour of training), it exists for reading commands, and models logged on one
host reach the others."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from tuner.errors import UsageError
from tuner.runtime.recovery import first_line
from tuner.storage.databases import CONNECT_TIMEOUT_S, check_creatable, has_table
from tuner.storage.locations import (
    DATABASE_PREFIXES,
    absent,
    host_local,
    is_shared_tracking,
    sqlite_path,
)


def check_tracking(uri: str, must_exist: bool = False) -> None:
    """The MLflow store answers before any trial runs (not after an hour of training), within
    seconds; one that does not exist yet (a SQLite file, or a database without MLflow's
    tables) is made later by a search, and refused with `must_exist` (reading commands)."""
    path = sqlite_path(uri)
    if path is not None and absent(uri):
        check_creatable(path, "--tracking-uri", uri)
        _refuse_if(must_exist, uri)
        return
    if uri.startswith(DATABASE_PREFIXES) and not has_table(uri, "experiments", "--tracking-uri"):
        _refuse_if(must_exist, uri)
        return  # reachable, and MLflow makes its tables on first use
    try:
        with bounded_http():
            from tuner.tracking.store import TrackingStore  # MLflow: loaded when asked

            TrackingStore(uri).answers()
    except Exception as exc:  # bad scheme, unreachable server, not a database
        raise UsageError(
            f"--tracking-uri {uri!r}: cannot reach the MLflow store ({first_line(exc)})"
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
    from tuner.tracking.store import TrackingStore  # MLflow: only for a shared store

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
        return has_table(uri, "experiments", "--tracking-uri")
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
