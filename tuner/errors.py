"""Typed errors. A UsageError is the user's to fix: the CLI prints it on one line, exit 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from tuner.redact import hide as mask_secrets


class TunerError(Exception):
    """Anything lstm-tuner raises on purpose; its message never shows a password."""

    def __init__(self, message: str = "") -> None:
        super().__init__(mask_secrets(str(message)))


class UsageError(TunerError):
    """A user mistake (file, flag, field): one line that names it and says what was expected."""


class SpaceError(UsageError):
    """A search-space file that cannot be used; the message lists every problem in it."""


class DataError(UsageError):
    """A data file that cannot be used: names the file, the column or line, what was expected."""


class CheckpointError(UsageError):
    """A checkpoint source that cannot be resolved, read or used for the task asked."""


class TrialFailed(TunerError):
    """A trial that cannot go on (NaN loss, out of memory); recorded, the study goes on."""


def some_of(items: list[Any]) -> str:
    """The first few items as a message names them: 'a', 'b' ..."""
    return ", ".join(map(repr, items[:5])) + (" ..." if len(items) > 5 else "")


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """' (did you mean X?)' when a close match exists, else ''."""
    match = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean '{match[0]}'?)" if match else ""
