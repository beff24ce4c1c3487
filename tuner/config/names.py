"""One rule for the names of studies and registered models, since a name becomes a folder
(checkpoints, reports), an MLflow experiment and an artifact location, and a value in
MLflow and Optuna queries: letters, digits, '.', '_' and '-', starting with a letter or a
digit, at most 100 characters. Names a user types are refused outside the rule; names we
derive (`<task>-<data stem>`) are cleaned into it; studies stored before the rule stay
readable, and their folders use the cleaned form.
"""

from __future__ import annotations

import re

from tuner.errors import UsageError

MAX_LENGTH = 100
_VALID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_LENGTH - 1}}}")
_OUTSIDE = re.compile(r"[^A-Za-z0-9._-]+")
RULE = f"1 to {MAX_LENGTH} letters, digits, '.', '_' or '-', starting with a letter or digit"


def check_name(name: str, flag: str = "--study") -> str:
    """`name` when it follows the rule, else a UsageError naming the flag."""
    if not isinstance(name, str) or not _VALID.fullmatch(name):
        raise UsageError(f"{flag} {name!r}: not a valid name; expected {RULE}")
    return name


def clean_name(text: str) -> str:
    """`text` made to follow the rule: every run of other characters becomes '_'."""
    cleaned = _OUTSIDE.sub("_", str(text)).lstrip("._-")[:MAX_LENGTH].rstrip("._-")
    return cleaned or "data"


def path_part(name: str) -> str:
    """The folder name for a study or model: the name itself when it follows the rule."""
    return name if _VALID.fullmatch(name) else clean_name(name)
