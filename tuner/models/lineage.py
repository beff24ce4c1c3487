"""Follow a model back through its fine-tunes to the study that first trained it."""

from __future__ import annotations

from dataclasses import dataclass

from tuner.config import keys
from tuner.errors import UsageError
from tuner.models.sources import model_version_tags, study_best_run
from tuner.tracking import TrackingStore


@dataclass(frozen=True)
class Hop:
    run_id: str
    study: str
    trial: str
    source: str  # how this run's starting weights were named ('' for a fresh search)
    source_sha256: str
    members: tuple[tuple[str, str], ...] = ()  # an ensemble's (trial, run) pairs


def lineage(ref: str, tracking_uri: str, storage: str) -> list[Hop]:
    """Hops from `ref` (models:/..., runs:/<id>, study:<name> or a run id) back to the
    original study."""
    store = TrackingStore(tracking_uri)
    if ref.startswith("models:/"):
        run_id = model_version_tags(store, ref)["source_run_id"]
    elif ref.startswith("study:"):
        run_id = study_best_run(ref[len("study:") :], storage)["source_run_id"]
    else:
        run_id = ref[len("runs:/") :].strip("/") if ref.startswith("runs:/") else ref
    hops: list[Hop] = []
    while run_id and len(hops) < 100:
        tags = store.run_tags(run_id)
        if tags is None:
            raise UsageError(f"{ref!r}: no MLflow run {run_id!r} in {tracking_uri}")
        hops.append(
            Hop(
                run_id,
                tags.get(keys.STUDY_TAG, "?"),
                tags.get(keys.TRIAL_TAG, "?"),
                tags.get(keys.SOURCE_TAG, ""),
                tags.get(keys.SOURCE_SHA_TAG, ""),
                _members(tags),
            )
        )
        run_id = tags.get(keys.SOURCE_RUN_TAG, "")
    return hops


def _members(tags: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The trials (and their runs) a top-k ensemble's run averages, from its tags."""
    trials = [t for t in tags.get(keys.MEMBERS_TAG, "").split(",") if t]
    runs = tags.get(keys.MEMBER_RUNS_TAG, "").split(",")
    return tuple(zip(trials, runs + [""] * (len(trials) - len(runs)), strict=False))


def format_lineage(hops: list[Hop]) -> str:
    lines = []
    for depth, hop in enumerate(hops):
        arrow = "" if depth == 0 else "<- "
        lines.append(
            f"{'   ' * depth}{arrow}run {hop.run_id}: trial {hop.trial} of study {hop.study!r}"
        )
        lines += [
            f"{'   ' * depth}   member: trial {trial} (run {run})" for trial, run in hop.members
        ]
        if hop.source:
            lines.append(
                f"{'   ' * depth}   fine-tuned from {hop.source} "
                f"(checkpoint sha256 {hop.source_sha256[:12]}...)"
            )
    if hops and not hops[-1].source:
        lines.append(f"{'   ' * (len(hops) - 1)}   original search: study {hops[-1].study!r}")
    return "\n".join(lines)
