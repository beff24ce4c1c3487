"""Create / resume / run a study: `--trials` as a total target, on one process or several.

Split by verb, as Optuna splits its own study package: config (what a search takes and
returns), prepare (check everything, create nothing; `checked` is the one sequence of checks
a search, a fine-tune and fresh fits all pass), record (the study and its parent run),
optimize (the trial loop and the closing record), summary (a study read back). Beside them:
`trial` (one trial) and `_keep` (what it keeps of its model), `samplers`, `resume` (what a
resumed study must share), `continued` and `warmstart`.

The trial loop (`execute`, `SweepStopped`) loads Lightning and torch, and the study's record
MLflow, so they are imported on first use: commands that only read a study (`tuner best`,
`trials`) never load the first two, and `trials` not even MLflow."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

from tuner.contract.datafiles import DataFile, in_memory
from tuner.errors import UsageError
from tuner.runtime.logs import quiet_libraries, silenced
from tuner.runtime.workers import run_workers
from tuner.storage.studies import load_study
from tuner.study._config import Prepared, SearchConfig, SearchResult
from tuner.study._prepare import (
    check_existing_study,
    checked,
    data_stem,
    default_data_path,
    default_space_path,
    prepare,
    search_space,
)
from tuner.study._summary import count_finished, count_finished_by_name, summarize

if TYPE_CHECKING:
    from tuner.tracking import StudyTracker

__all__ = [
    "Prepared",
    "SearchConfig",
    "SearchResult",
    "SweepStopped",
    "check_existing_study",
    "checked",
    "count_finished_by_name",
    "data_stem",
    "default_data_path",
    "default_space_path",
    "search_space",
    "execute",
    "prepare",
    "quiet_libraries",
    "run_search",
    "summarize",
]


def __getattr__(name: str):  # noqa: ANN202 - PEP 562: `execute` and `SweepStopped` on use
    if name in ("execute", "SweepStopped"):
        from tuner.study import _optimize

        return getattr(_optimize, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run_search(config: SearchConfig) -> SearchResult:
    """Run (or resume) a study until it holds `config.trials` finished trials."""
    quiet_libraries()
    with silenced(config.quiet):
        return _run_search(config)


def _run_search(config: SearchConfig) -> SearchResult:
    prepared = prepare(config)
    if config.workers > 1 or "," in config.devices or config.devices.isdigit():
        return _run_with_workers(prepared, config)
    from tuner.study._optimize import execute

    return execute(prepared, config)


def handed_to_workers(config: SearchConfig, folder: Path) -> SearchConfig:
    """In-memory data goes to the workers as a file the launcher writes, not as a pickle of
    the caller's objects."""
    source = config.data.get("data")
    if not in_memory(source) or isinstance(source, DataFile):
        return config
    return dataclasses.replace(
        config, data={**config.data, "data": DataFile.write(source, folder)}
    )


def _run_with_workers(prepared: Prepared, config: SearchConfig) -> SearchResult:
    from tuner.study._record import close_record, open_record

    def close(study: optuna.Study, tracker: StudyTracker, status: str) -> None:
        close_record(prepared, study, tracker, status)

    with tempfile.TemporaryDirectory(prefix="tuner-data-") as folder:
        config = handed_to_workers(config, Path(folder))
        failed = run_workers(config, run_search, lambda: open_record(prepared, config), close)
    study = load_study(prepared.name, prepared.storage)
    if failed and count_finished(study) < config.trials:
        raise UsageError(
            f"{failed} of {config.workers} workers failed (see their messages "
            f"above); rerun the same command to resume"
        )
    if failed:
        print(f"note: {failed} worker(s) stopped early; the others finished the study")
    return summarize(study, prepared.tracking_uri, prepared.storage)
