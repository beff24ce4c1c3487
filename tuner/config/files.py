"""Files a user hands us, read within bounds: a regular file only (a named pipe would
block the read forever, a device never ends), YAML at most MAX_YAML_BYTES and without
aliases (a few lines of nested aliases expand to gigabytes), errors on one short line."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from tuner.errors import UsageError

MAX_YAML_BYTES = 1 << 20  # a search space or an MLmodel file is a few kilobytes
EXCERPT = 80  # characters of a bad value an error quotes


def regular_file(
    path: str | Path, what: str, expected: str, error: type[UsageError] = UsageError
) -> Path:
    """The path of an existing regular file, or `error` saying what it is instead."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise error(f"{path}: {what} not found; expected {expected}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror}); expected {expected}") from None
    if not stat.S_ISREG(mode):
        raise error(f"{path}: {what} is {_kind(mode)}; expected {expected}")
    return path


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses aliases (`*name`) before expanding any."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.YAMLError(f"line {mark.line + 1}: aliases (*name) are not accepted")
        return super().compose_node(parent, index)


def load_yaml(
    path: str | Path, what: str, expected: str, error: type[UsageError] = UsageError
) -> Any:
    """A user's YAML file, parsed within bounds; `error` names the file, the line and why."""
    path = regular_file(path, what, expected, error)
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise error(f"{path}: {what} of {size} bytes; at most {MAX_YAML_BYTES} ({expected})")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_NoAliasLoader)  # noqa: S506
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what} ({excerpt(str(exc))})") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({_where(exc)}); expected {expected}") from None
    except RecursionError:
        raise error(f"{path}: YAML nested too deeply; expected {expected}") from None


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return excerpt(f"line {mark.line + 1}: {problem}" if mark else problem)


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """A value or message as an error quotes it: one line, at most `limit` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def output_file(path: str | Path, flag: str = "--out") -> Path:
    """A file we are to write, checked before any work: its folder exists and can be
    written, and it is not a folder (an existing file is replaced, atomically)."""
    path = Path(path)
    if path.exists() and not path.is_file():
        kind = _kind(path.stat().st_mode)
        raise UsageError(f"{flag} {path}: is {kind}; expected a file to write")
    _writable_folder(path.parent, f"{flag} {path}")
    return path


def output_folder(path: str | Path, flag: str = "--out") -> Path:
    """A folder we are to write into (made if missing), checked before any work."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: is a file; expected a folder to write into")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    _writable_folder(existing, f"{flag} {path}")
    return path


def _writable_folder(folder: Path, what: str) -> None:
    folder = folder if str(folder) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"{what}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{what}: folder {folder} is not writable")
