"""Optuna's storage and where records live: `locations` (the stores' URIs, ./mlruns and its
folders), `databases` (a server or SQLite file read directly, engine options, the set-up
lock), `studies` (reading studies, opening the storage for a sweep), `proxy` (Optuna's gRPC
storage proxy) and `sqlite_wal`. MLflow's side is tuner.tracking; nothing here imports it."""

from tuner.storage.databases import store_lock
from tuner.storage.locations import HOME, resolve_storage, resolve_tracking
from tuner.storage.studies import load_study, open_storage, read_studies

__all__ = [
    "HOME",
    "load_study",
    "open_storage",
    "read_studies",
    "resolve_storage",
    "resolve_tracking",
    "store_lock",
]
