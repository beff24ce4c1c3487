"""Records queued on local disk for a writer process (tuner.tracking.writer): each entry is
a folder holding `ops.json` (what to write, as data: never code) and the files it uploads,
made durable (fsync, then an atomic rename) before the trial moves on, so a process that
dies leaves its records for the next run to write.

An entry is `<ns>-<pid>-<n>` while queued by process `pid`; whoever applies it first renames
it `<name>.by-<pid>` (a rename succeeds once, so no record is written twice at once); a
failed attempt leaves `failed.txt` with its reason. A process applies its own entries and
those of processes that no longer run."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

OPS = "ops.json"
FAILED = "failed.txt"
CLAIMED = ".by-"


class RecordsFailed(Exception):
    """The writer could not write queued records (retried); its reason is the store's."""


class Journal:
    """The queued records of one study on this host."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._numbers = itertools.count()

    def put(self, ops: list[dict[str, Any]], files: Mapping[str, Path] | None = None) -> Path:
        """Queue `ops`; `files` (name -> a file or folder of ours) move into the entry."""
        draft = self.folder / f".draft-{uuid.uuid4().hex}"
        draft.mkdir(parents=True)  # the folder too (another process's tidy() may remove it)
        for name, path in (files or {}).items():
            shutil.move(str(path), draft / name)
        with open(draft / OPS, "w", encoding="utf-8") as stream:
            json.dump(ops, stream)
            stream.flush()
            os.fsync(stream.fileno())
        entry = self.folder / f"{time.time_ns():020d}-{os.getpid()}-{next(self._numbers):06d}"
        os.rename(draft, entry)
        _sync_folder(self.folder)
        return entry

    def tidy(self) -> None:
        """Once a sweep wrote its queue: the signal files of writers' owners that ended
        (`.ready-<pid>`, `.stop-<pid>`), and the folder itself where nothing is left."""
        if not self.folder.is_dir():
            return
        for signal_file in [*self.folder.glob(".ready-*"), *self.folder.glob(".stop-*")]:
            pid = signal_file.name.rpartition("-")[2]
            if pid.isdigit() and not alive(int(pid)):
                signal_file.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: another process's queue
            self.folder.rmdir()

    def entries(self) -> list[Path]:
        """Every queued entry, oldest first (claimed ones included)."""
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.iterdir() if not p.name.startswith(".")]
        return sorted(found, key=lambda p: p.name)

    def claim(self, owners: tuple[int, ...]) -> Path | None:
        """The oldest entry queued by one of `owners` or by a process that no longer runs,
        now held by this process; None when there is none."""
        me = os.getpid()
        for entry in self.entries():
            base, _, holder = entry.name.partition(CLAIMED)
            if holder == str(me):
                return entry
            queued_by = int(base.split("-")[1])
            if holder and alive(int(holder)):
                continue
            if not holder and queued_by not in owners and alive(queued_by):
                continue
            claimed = entry.with_name(f"{base}{CLAIMED}{me}")
            try:
                os.rename(entry, claimed)
            except FileNotFoundError:  # another process took it meanwhile
                continue
            return claimed
        return None

    def done(self, entry: Path) -> None:
        shutil.rmtree(entry, ignore_errors=True)

    def failed(self, entry: Path, reason: str) -> None:
        (entry / FAILED).write_text(reason, encoding="utf-8")

    def failures(self) -> list[str]:
        """The reasons of the entries whose last attempt failed."""
        return [
            (entry / FAILED).read_text(encoding="utf-8")
            for entry in self.entries()
            if (entry / FAILED).is_file()
        ]


def read_ops(entry: Path) -> list[dict[str, Any]]:
    with open(entry / OPS, encoding="utf-8") as stream:
        ops = json.load(stream)
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise ValueError(f"{entry / OPS}: expected a list of records")
    return ops


def alive(pid: int) -> bool:
    """Whether process `pid` of this host still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sync_folder(folder: Path) -> None:
    """The rename itself reaches the disk (a power loss keeps the entry)."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
