"""Loaded by every Python process of the fleet benchmark (benchmarks/fleet.py puts this
folder on PYTHONPATH): times the calls a worker makes to Optuna's storage for a trial (ask,
tell) and for each report (report, should_prune), and writes them when the process exits
to $TUNER_FLEET_TIMINGS/<host>-<pid>.json. Not part of lstm-tuner."""

from __future__ import annotations

import atexit
import json
import os
import socket
import time

FOLDER = os.environ.get("TUNER_FLEET_TIMINGS")


def _timed(owner: object, name: str, kind: str, seconds: dict[str, list[float]]) -> None:
    original = getattr(owner, name)

    def wrapper(*args: object, **kwargs: object) -> object:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds.setdefault(kind, []).append(time.perf_counter() - started)

    setattr(owner, name, wrapper)


def _install() -> None:
    import optuna.study._optimize as optimize
    from optuna.study import Study
    from optuna.trial import Trial

    seconds: dict[str, list[float]] = {}
    _timed(Trial, "report", "report", seconds)
    _timed(Trial, "should_prune", "should_prune", seconds)
    _timed(Study, "ask", "ask", seconds)
    _timed(optimize, "_tell_with_warning", "tell", seconds)

    def dump() -> None:
        if seconds:
            name = f"{socket.gethostname()}-{os.getpid()}.json"
            with open(os.path.join(FOLDER, name), "w") as handle:
                json.dump(seconds, handle)

    atexit.register(dump)


if FOLDER:
    _install()
