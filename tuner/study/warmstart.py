"""Warm starts: a new study's first trials are the best configurations of earlier studies of
the same task (`--warm-start STUDY[,STUDY...]`), fitted to the new space, queued before the
sampler takes over; the sampler then learns from their results like any other trial's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from tuner.config import keys
from tuner.config.space import ParamSpec, SearchSpace
from tuner.errors import UsageError
from tuner.reports.ranking import ranked_trials, value_of


def parse_sources(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def check_sources(
    sources: list[str],
    name: str,
    task: str,
    existing: Mapping[str, Any],
    source_sha: str | None = None,
) -> None:
    """Each source is another stored study of the same task; for a fine-tune
    (`source_sha` given), a fine-tune of the same source model: its space is built around
    that model's settings, and its best lr is only a guide for the same weights."""
    for source in sources:
        summary = existing.get(source)
        if source == name:
            raise UsageError(f"--warm-start {source!r}: a study cannot warm-start from itself")
        if summary is None:
            known = ", ".join(sorted(existing)) or "none"
            raise UsageError(
                f"--warm-start {source!r}: no such study in this storage (studies: {known})"
            )
        made_for = keys.study_attr(summary, keys.TASK)
        if made_for != task:
            raise UsageError(
                f"--warm-start {source!r}: that study tuned task {made_for!r}, not {task!r}"
            )
        tuned_from = summary.user_attrs.get(keys.SOURCE_SHA_TAG)
        if source_sha is not None and tuned_from != source_sha:
            what = "a search, not a fine-tune" if tuned_from is None else "another model"
            raise UsageError(
                f"--warm-start {source!r}: that study fine-tuned {what}; a fine-tune warm-starts "
                f"from fine-tunes of the same source (sha256 {source_sha[:12]})"
            )


def fit_params(params: Mapping[str, Any], space: SearchSpace) -> tuple[dict[str, Any], list[str]]:
    """The params of an earlier trial as the new space can take them: a number outside a
    range is clipped to it (and onto its step), a choice the space no longer offers is
    dropped (the sampler picks it), a param the space does not search is left out."""
    fitted, notes = {}, []
    for spec in space.params:
        if spec.name not in params:
            continue
        value, note = _fit_one(spec, params[spec.name])
        if value is not None:
            fitted[spec.name] = value
        if note:
            notes.append(note)
    return fitted, notes


def _fit_one(spec: ParamSpec, value: Any) -> tuple[Any, str]:
    if spec.kind == "categorical":
        if value in spec.choices:
            return value, ""
        return None, f"{spec.name}={value!r} is not a choice now: the sampler picks it"
    fitted = min(max(value, spec.low), spec.high)
    if spec.step:
        fitted = spec.low + round((fitted - spec.low) / spec.step) * spec.step
        fitted = min(fitted, spec.high)
    if spec.kind == "int":
        fitted = int(round(fitted))
    if fitted != value:
        return fitted, f"{spec.name}={value} clipped to {fitted}"
    return fitted, ""


def enqueue_warm_start(
    study: optuna.Study, sources: list[str], space: SearchSpace, top: int
) -> list[str]:
    """Queue the best `top` configurations of each source (once per study: a resumed
    study was warm-started already). Returns one note per queued trial."""
    if not sources or study.user_attrs.get(keys.WARM_STARTED_FROM) or study.trials:
        return []
    notes, queued = [], set()
    for source in sources:
        earlier = optuna.load_study(study_name=source, storage=study._storage)
        for trial in ranked_trials(earlier)[:top]:
            params, fixes = fit_params(trial.params, space)
            if not params or tuple(sorted(params.items())) in queued:
                continue
            queued.add(tuple(sorted(params.items())))
            origin = f"{source}#{trial.number}"
            study.enqueue_trial(params, user_attrs={keys.WARM_START: origin})
            fixed = f" ({'; '.join(fixes)})" if fixes else ""
            notes.append(f"warm start: queued trial {origin} (value {value_of(trial):.4g}){fixed}")
    study.set_user_attr(keys.WARM_STARTED_FROM, sources)
    return notes
