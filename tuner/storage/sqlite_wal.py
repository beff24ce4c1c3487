"""The SQLite files a sweep writes (Optuna's study, MLflow's runs) run in WAL journal mode
with synchronous=NORMAL.

Why: a trial makes some 40 small commits (Optuna's reports and attributes, MLflow's run,
metrics and model records). In SQLite's default mode each commit waits for several disk
flushes; in WAL mode with NORMAL it appends to the log and the flush happens at
checkpoints. That made 17 attribute writes 2.5x faster here (benchmarks/JOURNAL.md).

What it costs: a crashed or killed process loses nothing, but a power cut or a crash of
the machine can roll back the last commits (the file stays consistent): SQLite's own
terms for WAL with NORMAL. WAL needs shared memory, so the file must be on a local disk;
a SQLite file on a network filesystem was never supported (its locks are not reliable
there): teams use PostgreSQL. On a full disk the file cannot even be opened (its `-shm`
file cannot be made): stores.py reports that as the full disk it is.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

_FILES: set[str] = set()  # the database files this process put in WAL mode


def use_wal(*paths: os.PathLike[str] | str) -> None:
    """Every connection this process opens to these files from now on (any SQLAlchemy
    engine: Optuna's and MLflow's) uses WAL with synchronous=NORMAL."""
    if not _FILES:
        event.listen(Engine, "connect", _on_connect)
    _FILES.update(os.path.realpath(path) for path in paths)


def _on_connect(connection: Any, _record: Any) -> None:
    if not isinstance(connection, sqlite3.Connection):
        return
    main = connection.execute("PRAGMA database_list").fetchone()  # (seq, name, file)
    if main is None or not main[2] or os.path.realpath(main[2]) not in _FILES:
        return
    try:  # persistent in the file; a no-op once it is in WAL mode
        connection.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:  # another process holds it in the old mode: it stays
        pass
    connection.execute("PRAGMA synchronous=NORMAL")
    # the log folds into the file every 64 pages and is cut back to 1 MiB after: at its
    # default (1000 pages, never cut) making MLflow's tables left a 4 MiB log beside a
    # 1 MiB database; no slower per trial (benchmarks.overhead)
    connection.execute("PRAGMA wal_autocheckpoint=64")
    connection.execute("PRAGMA journal_size_limit=1048576")
