"""What a resumed study must share with its first run: the model and training settings
(space, fixed settings, precision) and the data (its content and its options). Seeds,
trial totals, timeouts, workers, devices and stores may differ between runs and hosts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.contract.datafiles import fingerprint, recordable
from tuner.errors import UsageError


def study_setup(
    space: Mapping[str, Any], data_args: Mapping[str, Any], precision: str
) -> dict[str, Any]:
    """The settings that decide what a trial trains, in a form the study can store."""
    options = {k: v for k, v in recordable(data_args).items() if k != "data"}
    return {
        "params": space.get("params", {}),
        "fixed": space.get("fixed", {}),
        "precision": precision,
        "data_options": options,
        "data_sha256": fingerprint(data_args.get("data")),
    }


def changes(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = "") -> list[str]:
    """'key: old -> new' for every setting that differs (nested keys dotted)."""
    found = []
    for key in sorted(set(before) | set(after), key=str):
        old, new = before.get(key), after.get(key)
        name = f"{prefix}{key}"
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            found += changes(old, new, f"{name}.")
        elif old != new and key == "data_sha256":
            found.append("data: the file's content differs")
        elif old != new:
            found.append(f"{name}: {_shown(old)} -> {_shown(new)}")
    return found


def _shown(value: Any) -> str:
    return "unset" if value is None else repr(value)


def check_unchanged(name: str, stored: Mapping[str, Any] | None, now: Mapping[str, Any]) -> None:
    """Refuse to resume study `name` with other settings than it was made with (results of
    two setups would be ranked as one search). Studies made before setups were stored
    have none to compare."""
    if not stored:
        return
    found = changes(stored, now)
    if found:
        shown = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
        raise UsageError(
            f"--study {name!r}: this study was run with other settings ({shown}); rerun with "
            f"the same ones, choose another --study, or pass --allow-changes to mix them"
        )


def check_choices_kept(
    name: str, stored: Mapping[str, Any] | None, now: Mapping[str, Any]
) -> None:
    """Even with --allow-changes a study keeps each categorical param's choices: Optuna
    holds one set per param and study, and would fail every trial that suggests another."""
    before = (stored or {}).get("params", {})
    for param, spec in now.get("params", {}).items():
        old = before.get(param, {})
        if spec.get("type") == old.get("type") == "categorical" and spec["choices"] != old.get(
            "choices"
        ):
            raise UsageError(
                f"--study {name!r}: params.{param}: choices {old['choices']} -> "
                f"{spec['choices']}; a study cannot change a categorical param's choices "
                f"(Optuna keeps one set per study): choose another --study, and "
                f"--warm-start {name} to begin from this one's best"
            )
