"""One rule for stop signals. Ctrl-C (SIGINT) is the user stopping: the running trial is
recorded as interrupted (not retried), the study's runs are closed, and the same command
resumes. SIGTERM is a preemption notice (a cluster taking the machine back): the running
trial trains to the end of its epoch, writes a resume checkpoint (tuner.training.preemption), is
queued again, and the process stops as for Ctrl-C; its retry continues from that epoch.
In the launching process a second signal ends it at once; the next run of the same
command records what was left open.

While trials run (`deferred()`), a signal only sets a flag that training checks after every
batch and the study before every trial: a KeyboardInterrupt raised at an arbitrary point
could land inside a store's transaction (leaving SQLite locked for the other workers) or in
a finalizer (where Python swallows it and the worker ran on). Elsewhere (reading data,
checking inputs) it raises at once.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_stop = threading.Event()
_preempt = threading.Event()
_state: dict = {"installed": False, "second_exits": True, "previous": None, "deferred": False}
AGAIN = (
    b"\nstopped again: exiting without recording the running trial; rerun the same "
    b"command to record it and resume\n"
)


def install(second_exits: bool = True) -> None:
    """Handle SIGINT and SIGTERM in this process (a worker passes second_exits=False: its
    launcher may pass the same stop on, and it must still record its trial)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _stop.clear()
    _preempt.clear()
    previous = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    _state.update(installed=True, second_exits=second_exits, previous=previous)
    restore()


def uninstall() -> None:
    """The handlers this process had before `install` (the CLI called in-process)."""
    if threading.current_thread() is not threading.main_thread() or not _state["installed"]:
        return
    sigint, sigterm = _state["previous"]
    signal.signal(signal.SIGINT, sigint)
    signal.signal(signal.SIGTERM, sigterm)
    _state["installed"] = False


def restore() -> None:
    """Our handlers for SIGINT and SIGTERM (Python's default SIGINT handler before install)."""
    if threading.current_thread() is not threading.main_thread():
        return
    handler = _on_signal if _state["installed"] else signal.default_int_handler
    signal.signal(signal.SIGINT, handler)
    if _state["installed"]:
        signal.signal(signal.SIGTERM, _on_signal)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _stop.is_set():
        if _state["second_exits"]:
            os.write(2, AGAIN)
            os._exit(130)
        return
    _stop.set()
    if signum == signal.SIGTERM:
        _preempt.set()
    if not _state["deferred"]:
        raise KeyboardInterrupt


@contextmanager
def deferred() -> Iterator[None]:
    """Stop requests become a flag checked at safe points (see the module's docstring)."""
    before = _state["deferred"]
    _state["deferred"] = True
    try:
        yield
    finally:
        _state["deferred"] = before


def sleep(seconds: float) -> None:
    """time.sleep that ends early, with KeyboardInterrupt, when a stop is asked for."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        raise_if_stopped()
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    raise_if_stopped()


def stop_requested() -> bool:
    return _stop.is_set()


def preempted() -> bool:
    """The stop is a preemption notice (SIGTERM), not the user's Ctrl-C."""
    return _preempt.is_set()


class Preempted(Exception):  # noqa: N818 (what happened, not an error)
    """Raised at an epoch's end by a trial that saved its resume checkpoint after a SIGTERM
    (an Exception, not a KeyboardInterrupt: the trial is re-queued, not interrupted)."""


class PreemptionStop(KeyboardInterrupt):
    """The sweep stops, as for Ctrl-C, once the preempted trial is recorded and queued."""


def raise_if_user_stopped() -> None:
    """Within an epoch: Ctrl-C stops at once; a preemption lets the epoch finish, so the
    trial can save a checkpoint it can resume from."""
    if _stop.is_set() and not _preempt.is_set():
        raise KeyboardInterrupt


def raise_if_stopped() -> None:
    """Raise KeyboardInterrupt when a stop was asked for (and perhaps swallowed)."""
    if _stop.is_set():
        raise KeyboardInterrupt
