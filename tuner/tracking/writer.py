"""The writer beside a sweep: a process of its own that writes the records a trial queued
(tuner.runtime.journal) to MLflow, so their store round trips and uploads stay off the
trial loop's CPU and clock. A thread of the sweep's own process would not do: the writes
took the loop's time through the GIL (benchmarks/RESULTS.md).

The entries hold data only; what they may ask for is the tracker's own writes named in
APPLIED. A write that fails is tried RETRIES times, then the entry keeps the reason and the
writer stops: the sweep ends with that line, and the next run writes what is left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

from tuner.runtime.journal import Journal, RecordsFailed, read_ops
from tuner.runtime.recovery import SERVER_GONE, environment_failure, first_line
from tuner.storage.databases import store_lock
from tuner.storage.studies import set_study_attr

APPLIED = ("log_metrics", "end_trial", "log_text", "keep_weights", "publish_model")
RETRIES = 3
IDLE_S = 0.05  # how often an idle writer looks for new entries
ENV = "TUNER_WRITER"  # the tracker's settings, through the environment: no secret in `ps`
# The writer starts once the sweep has run AFTER_S: loading MLflow in a process of its own
# costs about 2 s of CPU, more than a sweep of a few seconds records; such a sweep writes
# its queue itself as it ends (TUNER_WRITER_AFTER_S changes it; the tests use 0)
AFTER_S, AFTER_ENV = 10.0, "TUNER_WRITER_AFTER_S"


def apply_entry(tracker: Any, entry: Path) -> None:
    """Write one entry's records through `tracker` (a StudyTracker writing directly)."""
    for op in read_ops(entry):
        name = op.get("op")
        if name not in APPLIED:
            raise ValueError(f"{entry}: {name!r} is not a record this writer writes")
        arguments = {k: v for k, v in op.items() if k != "op"}
        getattr(tracker, f"_{name}")(entry=entry, **arguments)


def write_all(tracker: Any, journal: Journal, owners: tuple[int, ...]) -> int | None:
    """Write the entries of `owners` and of processes that ended, oldest first; returns how
    many, or None once an entry failed (its reason kept in it)."""
    written = 0
    while (entry := journal.claim(owners)) is not None:
        if not _write_one(tracker, journal, entry):
            return None
        written += 1
    return written


def _write_one(tracker: Any, journal: Journal, entry: Path) -> bool:
    for attempt in range(RETRIES):
        try:
            apply_entry(tracker, entry)
        except Exception as exc:  # kept with the entry, and said by the sweep
            reason = environment_failure(exc) or f"{type(exc).__name__}: {first_line(exc)}"
            journal.failed(entry, reason)
            if reason.startswith(SERVER_GONE):  # MLflow's client retried it for minutes
                return False
            time.sleep(0.5 * 2**attempt)
            continue
        journal.done(entry)
        return True
    return False


class Queue:
    """A sweep's records on their way to MLflow: each queued on local disk, written by a
    writer process started with the first queued after AFTER_S."""

    def __init__(self, journal: Journal, settings: dict[str, Any]) -> None:
        self.journal, self.settings = journal, settings
        self.writer: subprocess.Popen | None = None
        self.began = time.monotonic()

    def put(self, ops: list[dict[str, Any]], files: Any = None) -> None:
        self.journal.put(ops, files)
        if time.monotonic() - self.began >= float(os.environ.get(AFTER_ENV, AFTER_S)):
            self.start()

    def start(self) -> None:
        if self.writer is None:
            self.writer = _start(self.journal, self.settings)

    def check(self) -> None:
        """Raise RecordsFailed once the writer stopped on a record it could not write."""
        if self.writer is not None and self.writer.poll() is not None:
            reasons = self.journal.failures()
            if reasons:
                raise RecordsFailed(reasons[0])

    def stop_writer(self, abandon: bool = False) -> None:
        """Let the writer finish what is queued, and wait for it; one still starting is
        stopped instead (its queue is written by this process, whose MLflow is loaded: a
        short sweep does not wait for another process's imports). With `abandon` (a store
        failed) it is stopped at once: what it had not written stays queued for the rerun,
        not retried against a store that stopped answering."""
        if self.writer is None:
            return
        me = os.getpid()
        if abandon or not (self.journal.folder / f".ready-{me}").exists():
            self.writer.kill()
        self.journal.folder.mkdir(parents=True, exist_ok=True)  # see Journal.tidy
        (self.journal.folder / f".stop-{me}").touch()
        try:
            self.writer.wait()
        finally:
            for signal_file in (f".stop-{me}", f".ready-{me}"):
                (self.journal.folder / signal_file).unlink(missing_ok=True)


@contextmanager
def beside(tracker: Any, storage: str, folder: Path) -> Iterator[None]:
    """During a sweep: what an earlier process left queued is written first, then the
    tracker's records are queued for a writer process; on the way out every queued record
    is written (by the writer, then what it left by this process) before the study may be
    reported finished. Raises RecordsFailed when some could not be (they stay queued)."""
    journal = Journal(folder)
    _writes_directly(tracker, storage)
    earlier = _write_or_raise(tracker, journal)  # an earlier run's, before this one's
    if earlier:
        print(f"note: wrote {earlier} record(s) an earlier run left queued in {journal.folder}")
    queue = tracker.queue = Queue(journal, _settings(tracker, storage))
    try:
        yield
    except BaseException as exc:
        tracker.queue = None
        store_failed = environment_failure(exc) is not None
        queue.stop_writer(abandon=store_failed)
        if not store_failed:  # a store that failed: the rerun writes them
            with suppress(RecordsFailed):  # the sweep's own error is the one to say
                _write_or_raise(tracker, journal)
        raise
    tracker.queue = None
    queue.stop_writer()
    _write_or_raise(tracker, journal)  # what the writer left, if it stopped or failed
    journal.tidy()


def check_writer(tracker: Any) -> None:
    """Raise RecordsFailed once the writer stopped on a record it could not write."""
    if getattr(tracker, "queue", None) is not None:
        tracker.queue.check()


def _write_or_raise(tracker: Any, journal: Journal) -> int:
    written = write_all(tracker, journal, (os.getpid(),))
    if written is None:
        left = len(journal.entries())
        raise RecordsFailed(
            f"{journal.failures()[0]}; {left} record(s) not yet in MLflow are kept in "
            f"{journal.folder} and the next run writes them"
        )
    return written


def _settings(tracker: Any, storage: str) -> dict[str, Any]:
    return {"tracking_uri": tracker.tracking_uri, "study_name": tracker.study_name,
            "artifact_root": tracker.artifact_root, "model_name": tracker.model_name,
            "tags": tracker.tags, "storage": storage}  # fmt: skip


def _start(journal: Journal, settings: dict[str, Any]) -> subprocess.Popen:
    """The writer of this process's entries, as a process of its own."""
    journal.folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "tuner.tracking.writer", str(journal.folder),
               str(os.getpid())]  # fmt: skip
    env = {**os.environ, ENV: json.dumps(settings)}
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)


def _writes_directly(tracker: Any, storage: str) -> Any:
    """`tracker` as a writer uses it: `best` moves under the stores' lock, and the version a
    model became goes to the study's Optuna record."""
    tracker.lock = partial(store_lock, storage, tracker.tracking_uri)
    tracker.version_store = partial(set_study_attr, storage, tracker.study_name)
    return tracker


def _tracker(settings: dict[str, Any]) -> Any:
    """The writer's tracker: the sweep's, writing directly."""
    from tuner.tracking.study_runs import StudyTracker

    storage = settings.pop("storage")
    return _writes_directly(StudyTracker(**settings), storage)


def _serve(folder: Path, owner: int) -> int:
    tracker = _tracker(json.loads(os.environ[ENV]))
    journal = Journal(folder)
    stop_file = folder / f".stop-{owner}"
    folder.mkdir(parents=True, exist_ok=True)  # see Journal.tidy
    (folder / f".ready-{owner}").touch()  # its imports done (benchmarks wait for this)
    while True:
        if write_all(tracker, journal, (owner,)) is None:
            return 1
        if stop_file.exists() or os.getppid() != owner:
            return 0 if write_all(tracker, journal, (owner,)) is not None else 1
        time.sleep(IDLE_S)


if __name__ == "__main__":
    import signal

    from tuner.runtime.logs import quiet_libraries

    for stop_signal in (signal.SIGINT, signal.SIGTERM):  # the sweep's: finish the queue
        signal.signal(stop_signal, signal.SIG_IGN)
    quiet_libraries()  # the sweep says what failed, on one line
    sys.exit(_serve(Path(sys.argv[1]), int(sys.argv[2])))


__all__ = ["RecordsFailed", "apply_entry", "beside", "check_writer", "write_all"]
