"""What a person sees during a sweep: a line per finished trial, with the time left for the
requested trials (tuner.reports.outlook); on a TTY, a live study bar (finished / target,
best so far, the same time left, elapsed) with the running trial's epoch bar under it; with
--verbose and no TTY, a line per epoch."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from tuner.config import keys, trial_attrs
from tuner.reports.outlook import first_trial_note, time_left
from tuner.reports.ranking import FINISHED, best_trial, trial_state, value_of


def trial_line(
    trial: FrozenTrial, study: optuna.Study, metric: str, finished: list[FrozenTrial]
) -> str:
    """`trial 3  COMPLETE  val_mae=12.31  best=11.02 (trial 1)  4.2s` (`finished`: the
    study's finished trials, read already)."""
    duration = trial.duration.total_seconds() if trial.duration else 0.0
    parts = [f"trial {trial.number:<3d}", f"{trial_state(trial):<8s}"]
    attrs = trial_attrs.of(trial)
    if trial.state == TrialState.COMPLETE:
        parts.append(f"{metric}={value_of(trial):.4g}")
    elif trial.state == TrialState.PRUNED and keys.INFEASIBLE in attrs:
        parts.append(str(attrs[keys.INFEASIBLE]))
    elif trial.state == TrialState.PRUNED:
        fold = attrs.get(keys.PRUNED_FOLD)
        where = f"fold {fold} " if fold is not None else ""
        parts.append(f"pruned at {where}epoch {attrs.get(keys.PRUNED_AT, '?')}")
    elif trial.state == TrialState.FAIL:
        parts.append(str(attrs.get(keys.FAIL_REASON, "failed"))[:120])
    best = best_trial(study, finished)
    if best is not None:
        parts.append(f"best={value_of(best):.4g} (trial {best.number})")
    parts.append(f"{duration:.1f}s")
    return "  ".join(parts)


@dataclass
class Pace:
    """What the estimates need: the processes sharing the sweep, its --timeout, when it
    began and when the running trial began."""

    parallel: int = 1
    timeout: float | None = None
    started: float = field(default_factory=time.monotonic)
    trial_began: float = field(default_factory=time.monotonic)
    said: bool = False  # the first trial's timeout note, once


class StudyProgress:
    """Optuna callback (trial lines, study bar) and per-epoch hook (epoch bars)."""

    def __init__(
        self,
        metric: str,
        target: int,
        done: int,
        quiet: bool = False,
        label: str = "",
        verbose: bool = False,
        pace: Pace | None = None,
    ) -> None:
        self.metric, self.quiet, self.verbose = metric, quiet, verbose
        self.target, self.pace = target, pace or Pace()
        self.prefix = f"[{label}] " if label else ""
        self.console = Console(stderr=False)
        self.progress: Progress | None = None
        self.epoch_bars: dict[int, int] = {}
        if sys.stdout.isatty() and not quiet and not label:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.bar = self.progress.add_task("trials", total=target, completed=done)

    def __enter__(self) -> StudyProgress:
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress:
            self.progress.stop()

    def epoch(self, trial: int, epoch: int, total: int, metrics: Mapping[str, float]) -> None:
        """Called after each validation of a running trial."""
        self._first_epoch(epoch, total)
        value = metrics.get(self.metric)
        shown = f"{self.metric}={value:.4g}" if value is not None else ""
        if self.progress:
            if trial not in self.epoch_bars:
                self.epoch_bars[trial] = self.progress.add_task("", total=total)
            self.progress.update(
                self.epoch_bars[trial],
                completed=epoch,
                description=f"  trial {trial} epoch {epoch}/{total} {shown}",
            )
        elif self.verbose and not self.quiet:
            self.console.print(
                f"{self.prefix}  trial {trial} epoch {epoch}/{total} {shown}",
                highlight=False,
                soft_wrap=True,
            )

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """After each trial, on one read of the finished trials: stop at the study's target
        (Optuna's MaxTrialsCallback would read them again), the trial line, the bar."""
        finished = study.get_trials(deepcopy=False, states=FINISHED)
        if len(finished) >= self.target:
            study.stop()
        if trial_attrs.of(trial).get(keys.SKIPPED):
            return  # not run: another process finished the study meanwhile
        self.pace.trial_began = time.monotonic()
        left = time_left(finished, self.target, self.pace.parallel)
        if not self.quiet:
            line = trial_line(trial, study, self.metric, finished) + (f"  {left}" if left else "")
            self.console.print(self.prefix + line, highlight=False, soft_wrap=True)
        if not self.progress:
            return
        if trial.number in self.epoch_bars:
            self.progress.remove_task(self.epoch_bars.pop(trial.number))
        if trial.state in FINISHED:
            best = best_trial(study, finished)
            label = f"trials (best {self.metric}={value_of(best):.4g})" if best else "trials"
            label += f" {left}" if left else ""
            self.progress.update(self.bar, advance=1, description=label)

    def _first_epoch(self, epoch: int, total: int) -> None:
        """After the first trial's first epoch: whether --timeout ends the sweep after it."""
        pace = self.pace
        if pace.said or epoch != 1 or not pace.timeout or self.quiet:
            return
        pace.said = True
        now = time.monotonic()
        note = first_trial_note(now - pace.trial_began, total, pace.timeout, now - pace.started)
        if note:
            self.console.print(self.prefix + note, highlight=False, soft_wrap=True)
