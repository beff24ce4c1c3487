"""Where a project's records live: the Optuna storage and MLflow tracking URIs, their
defaults under ./mlruns, and the local folders a sweep makes once every input is checked."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from tuner import redact
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


def default_storage() -> str:
    """SQLite under ./mlruns, as an absolute path: MLflow caches stores by URI, and a
    relative one would point at another folder once the process changes directory."""
    return f"sqlite:///{(HOME / 'optuna.db').absolute()}"


def default_tracking_uri() -> str:
    return f"sqlite:///{(HOME / 'mlflow.db').absolute()}"


def resolve_storage(url: str | None) -> str:
    url = redact.remember_url(url) or default_storage()
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
    redact.remember_url(uri)
    redact.remember_url(artifact_root)
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


def absent(url: str) -> bool:
    """A SQLite store that does not exist yet (no file, or an empty one): nothing in it."""
    path = sqlite_path(url)
    return path is not None and (not path.is_file() or path.stat().st_size == 0)


def prepare_local_folders(storage: str, tracking_uri: str, artifact_root: str | None) -> None:
    """Make the folders the local stores need, their SQLite files in WAL mode
    (tuner.storage.sqlite_wal);
    called once every input has been checked."""
    for url in (storage, tracking_uri):
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            use_wal(path)
    if artifact_root and artifact_root.startswith("file://"):
        Path(artifact_root[len("file://") :]).mkdir(parents=True, exist_ok=True)
