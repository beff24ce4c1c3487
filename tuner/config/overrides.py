"""Settings fixed from the command line or the API (`--set key=value`, `overrides=`):
checked against the task's declaration like a space file's `fixed:`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.config.files import excerpt
from tuner.config.settings import TaskSpec, read_scalar
from tuner.config.space_file import as_spec
from tuner.errors import UsageError


def check_overrides(overrides: Mapping[str, Any], spec: TaskSpec) -> dict[str, Any]:
    """Settings fixed from the command line or the API (`--set`, `overrides=`), checked and
    with numbers written as text made numbers."""
    checked = {}
    for name, value in overrides.items():
        problem = spec.check(name, value)
        if problem:
            raise UsageError(f"--set {problem}")
        checked[name] = spec.table[name].coerce(value)
    return checked


def parse_overrides(pairs: list[str], spec: TaskSpec | Mapping[str, Any]) -> dict[str, Any]:
    """`--set key=value` pairs; values are read as YAML scalars (3, 0.1, true, text)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {pair!r}: expected key=value, e.g. --set max_epochs=20")
        value = read_scalar(text)
        if overrides.get(key.strip(), value) != value:
            raise UsageError(
                f"--set {key.strip()}={excerpt(text)} and --set {key.strip()}="
                f"{excerpt(str(overrides[key.strip()]))} disagree; give one of them"
            )
        overrides[key.strip()] = value
    return check_overrides(overrides, as_spec(spec))
