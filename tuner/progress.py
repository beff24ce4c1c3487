"""What a person sees during a sweep: a line per finished trial, and a bar on a TTY."""

from __future__ import annotations

import sys
import time

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def trial_line(trial: FrozenTrial, study: optuna.Study, metric: str) -> str:
    """`trial 3  COMPLETE  val_mae=12.31  best=11.02 (trial 1)  4.2s`."""
    duration = trial.duration.total_seconds() if trial.duration else 0.0
    parts = [f"trial {trial.number:<3d}", f"{trial.state.name:<8s}"]
    if trial.state == TrialState.COMPLETE:
        parts.append(f"{metric}={trial.value:.4g}")
    elif trial.state == TrialState.PRUNED:
        parts.append(f"pruned at epoch {trial.user_attrs.get('pruned_at_epoch', '?')}")
    elif trial.state == TrialState.FAIL:
        parts.append(str(trial.user_attrs.get("fail_reason", "failed"))[:120])
    best = _best(study)
    if best is not None:
        parts.append(f"best={best.value:.4g} (trial {best.number})")
    parts.append(f"{duration:.1f}s")
    return "  ".join(parts)


def _best(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


class StudyProgress:
    """Optuna callback printing trial lines; a rich bar (finished / target, best) on a TTY."""

    def __init__(
        self, metric: str, target: int, done: int, quiet: bool = False, label: str = ""
    ) -> None:
        self.metric, self.target, self.quiet = metric, target, quiet
        self.prefix = f"[{label}] " if label else ""
        self.console = Console(stderr=False)
        self.started = time.perf_counter()
        self.progress: Progress | None = None
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

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if not self.quiet:
            self.console.print(
                trial_line(trial, study, self.metric), highlight=False, soft_wrap=True
            )
        if self.progress and trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            best = _best(study)
            label = f"trials (best {self.metric}={best.value:.4g})" if best else "trials"
            self.progress.update(self.bar, advance=1, description=label)
