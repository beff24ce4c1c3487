"""What a process that stopped without recording its work leaves behind (a second Ctrl-C,
SIGKILL, a lost store, a full disk), and how the next run of the same command sets it
right; and which failures are the machine's, not the params' (they stop the study)."""

from __future__ import annotations

import datetime
import errno
import os
import socket
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.config import keys, trial_attrs
from tuner.errors import mask_secrets
from tuner.runtime.journal import RecordsFailed, alive

DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


# SQLAlchemy's errors that a store gives whatever the params: it is unreachable, full,
# locked, or read-only (InternalError: PostgreSQL's "read-only transaction" after a fail-over)
STORE_ERRORS = ("OperationalError", "DatabaseError", "InternalError")


# SQLAlchemy puts its own notes before the database's message, on lines of their own
SQLALCHEMY_NOTE = "(raised as a result of "
SERVER_GONE = "the MLflow server stopped answering"  # after MLflow's own retries


def environment_failure(exc: BaseException) -> str | None:
    """Why no trial can succeed now (full disk, a store that stopped answering), or None
    when the failure may be the params' (a NaN loss, out of memory, a bug in a model)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, RecordsFailed):  # the writer's own reason
            return str(seen)
        if isinstance(seen, OSError) and seen.errno in DISK_ERRNOS:
            return f"the disk is full or read-only ({seen.strerror}: {seen.filename or ''})"
        kind = type(seen)
        module = kind.__module__.split(".")[0]
        if module == "sqlalchemy" and kind.__name__ in STORE_ERRORS:
            detail = first_line(getattr(seen, "orig", None) or seen)  # the database's own words
            if "disk is full" in detail or "No space left" in detail:
                return f"the disk is full ({detail})"
            if "locked" not in detail:  # a busy SQLite file is contention, not a failure
                return f"a store failed ({detail})"
        if module in ("requests", "urllib3") and "Connection" in kind.__name__:
            return f"{SERVER_GONE} ({first_line(seen)})"
        if kind.__name__ == "MlflowException" and "API request to" in str(seen):
            return f"{SERVER_GONE} ({first_line(seen)})"
        if module == "grpc" and callable(getattr(seen, "code", None)):  # the storage proxy's
            detail = first_line(seen.details() or seen)  # type: ignore[attr-defined]
            if seen.code().name in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
                return f"the storage proxy stopped answering ({detail})"
            return f"a store failed behind the storage proxy ({detail})"
        seen = seen.__cause__ or seen.__context__
    return None


def first_line(exc: BaseException | str) -> str:
    """An error's first line, secrets hidden, then cut to 200 characters (its type when it
    says nothing): cutting first could leave part of a secret that no longer matches."""
    lines = mask_secrets(str(exc)).strip().splitlines()
    while len(lines) > 1 and lines[0].startswith(SQLALCHEMY_NOTE):  # the store's words next
        lines.pop(0)
    return lines[0][:200] if lines else type(exc).__name__


def this_host_pid(worker: str) -> int | None:
    """The pid of a trial's worker ('host:pid') when it ran on this host."""
    host, _, pid = worker.rpartition(":")
    return int(pid) if host == socket.gethostname() and pid.isdigit() else None


def fail_dead_trials(
    study: optuna.Study,
    on_stale: Callable[[optuna.Study, FrozenTrial], None] | None,
    grace: float,
) -> list[int]:
    """Trials left RUNNING by a process that no longer runs are failed now, as interrupted,
    and handed to `on_stale`, which closes their MLflow runs and re-queues their params:
    those of a process of this host that is gone, and those no process ever claimed (a kill
    between Optuna's creating the trial and its first heartbeat leaves one that Optuna's
    stale check never sees) once `grace` seconds have passed since they started."""
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _abandoned(trial, grace):
            continue
        storage = study._storage
        try:
            storage.set_trial_user_attr(trial._trial_id, keys.FAIL_REASON, keys.INTERRUPTED)
            storage.set_trial_user_attr(trial._trial_id, keys.INTERRUPTED_BY, _why(trial))
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process just did the same
        if on_stale is not None:
            on_stale(study, storage.get_trial(trial._trial_id))
        failed.append(trial.number)
    return failed


def _abandoned(trial: FrozenTrial, grace: float) -> bool:
    worker = trial_attrs.of(trial).get(keys.WORKER)
    if worker is None:
        started = trial.datetime_start or datetime.datetime.now()
        return (datetime.datetime.now() - started).total_seconds() > grace
    pid = this_host_pid(str(worker))
    return pid is not None and pid != os.getpid() and not alive(pid)


def _why(trial: FrozenTrial) -> str:
    if keys.WORKER in trial_attrs.of(trial):
        return "its process ended without recording it"
    return "its process ended before the trial started training"
