"""The one line a failure is recorded and said with (tuner.runtime.recovery.first_line)."""

from __future__ import annotations

import sqlite3

from mlflow.exceptions import MlflowException
from sqlalchemy.exc import OperationalError

from tuner.runtime.recovery import environment_failure, first_line


def test_a_locked_store_is_said_in_the_databases_words_not_sqlalchemys_note():
    """SQLAlchemy puts 'raised as a result of Query-invoked autoflush ...' before what the
    database said; MLflow's store wraps the lot: the line recorded is the database's."""
    database = sqlite3.OperationalError("database is locked")
    locked = OperationalError("INSERT INTO metrics ...", {}, database)
    locked.add_detail(
        "raised as a result of Query-invoked autoflush; consider using a "
        "session.no_autoflush block if this flush is occurring prematurely"
    )
    wrapped = MlflowException(str(locked))
    for error in (locked, wrapped):
        assert first_line(error) == "(sqlite3.OperationalError) database is locked"
    assert environment_failure(locked) is None  # contention, not a failed store
    assert first_line(OperationalError("SELECT 1", {}, sqlite3.OperationalError("x"))) == (
        "(sqlite3.OperationalError) x"
    )
