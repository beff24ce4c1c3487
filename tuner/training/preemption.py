"""Trial checkpoints while a trial runs, and resuming from them. A trial whose worker died
(SIGKILL, a preempted machine, power loss) has its params queued again; the retry loads the
dead trial's last checkpoint and trains on from the epoch after it, instead of from epoch 0.

A checkpoint is the fit's whole state (tuner.training.loop: weights, optimizer, lr scheduler,
epoch,
the recorder's curve and best weights, early stopping) plus the fold it belongs
to, the folds already finished and the RNG state, written atomically every
`checkpoint_every` epochs (0: whenever CHECKPOINT_SECONDS have passed since the last one,
so a trial of small epochs writes almost none) and at the end of the epoch a SIGTERM
arrives in. It lives under the study's checkpoint folder, named after the first trial of
its retry chain, and is removed once that chain's trial ends for good.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.storages import RetryFailedTrialCallback
from optuna.trial import FrozenTrial

from tuner.config import keys, trial_attrs
from tuner.runtime import signals
from tuner.training.loop import FitLoop

CHECKPOINT_SECONDS = 60.0  # checkpoint_every 0: how much work a lost worker may cost
KEY = "tuner_resume"  # our part of a loop checkpoint (tuner.training.loop)
KEPT_BY_RETRIES = (keys.WARM_START,)  # where the params came from, not how the trial ended


@dataclass(frozen=True)
class Chain:
    """A trial's retry chain, read once per trial: the attempts before it (first one first)
    and the chain's checkpoint, named after its first trial (None: checkpoints are off)."""

    earlier: list[int]
    checkpoint: Path | None

    @classmethod
    def of(cls, trial: optuna.Trial, folder: Path | None) -> Chain:
        frozen = trial.study._storage.get_trial(trial._trial_id)
        earlier = RetryFailedTrialCallback.retry_history(frozen)
        root = earlier[0] if earlier else trial.number
        return cls(earlier, folder / "resume" / f"trial-{root}.ckpt" if folder else None)

    def last_attempt(self, trial: optuna.Trial) -> FrozenTrial | None:
        """The attempt this retry repeats (the one that published the latest checkpoint)."""
        attempts = self.attempts(trial, self.earlier[-1:])
        return attempts[0] if attempts else None

    def attempts(self, trial: optuna.Trial, numbers: list[int] | None = None) -> list[FrozenTrial]:
        """The earlier attempts of this chain (or those of `numbers`), as stored."""
        storage, study_id = trial.study._storage, trial.study._study_id
        return [
            storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id, number))
            for number in (self.earlier if numbers is None else numbers)
        ]

    def discard(self) -> bool:
        """The chain's trial ended for good: its checkpoint is not needed any more. True if
        there was one (saved here, or fetched from where an earlier attempt published it)."""
        if self.checkpoint is None or not self.checkpoint.is_file():
            return False
        self.checkpoint.unlink(missing_ok=True)
        return True


@dataclass
class FoldDone:
    """A finished fold of a trial that was stopped in a later fold."""

    state: dict[str, torch.Tensor]
    value: float
    tie: float
    best_epoch: int


@dataclass
class Resume:
    """What a retried trial starts from: the fold to continue, its loop checkpoint,
    the folds finished before it, and where the dead trial stopped."""

    path: Path
    fold: int
    epoch: int
    done: list[FoldDone] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Resume | None:
        """The checkpoint at `path`, or None when there is none (a first attempt) or it
        cannot be read (an upload cut short by the host's death): the retry starts over."""
        if not path.is_file():
            return None
        try:
            ours = torch.load(path, map_location="cpu", weights_only=True)[KEY]
        except Exception:  # noqa: BLE001 (any unreadable file means: no checkpoint)
            return None
        done = [FoldDone(**fold) for fold in ours["done"]]
        return cls(path, ours["fold"], ours["epoch"], done)


class TrialCheckpoints:
    """Writes the running fold's resume checkpoint every `every` epochs (0: by time), and
    on a preemption notice (SIGTERM) at the end of the epoch it came in, then stops the
    trial. A callback of tuner.training.loop placed after the recorder, so the epoch it saves is
    recorded."""

    state_key = KEY

    def __init__(
        self,
        path: Path,
        every: int,
        fold: int,
        done: list[FoldDone],
        publish: Callable[[Path], None] | None = None,
    ) -> None:
        self.path, self.every, self.fold, self.done = path, every, fold, done
        self.publish = publish  # where other hosts read it (the trial's MLflow run)
        self.last_save = time.monotonic()
        self.epoch = 0

    def on_epoch_end(self, loop: FitLoop, model: Any, metrics: dict[str, float]) -> None:
        self.epoch = loop.epoch
        if signals.preempted():
            self.save(loop)
            raise signals.Preempted(f"preempted (SIGTERM) after epoch {self.epoch}")
        due = (self.epoch + 1) % self.every == 0 if self.every else self._time_is_up()
        if due and self.epoch + 1 < loop.max_epochs:
            self.save(loop)

    def _time_is_up(self) -> bool:
        return time.monotonic() - self.last_save >= CHECKPOINT_SECONDS

    def save(self, loop: FitLoop) -> None:
        """Atomically: a worker killed while writing leaves the previous checkpoint whole."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{os.getpid()}.part")
        loop.save(partial)
        os.replace(partial, self.path)
        if self.publish:
            self.publish(self.path)
        self.last_save = time.monotonic()

    def state_dict(self) -> dict[str, Any]:
        return {
            "fold": self.fold,
            "epoch": self.epoch,
            "done": [vars(fold) for fold in self.done],
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_rng_state(state["rng"])


def rng_state() -> dict[str, Any]:
    """Every generator a trial draws from, as plain values (the checkpoint loads with
    torch's weights-only loader: nothing in it can run code)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, keys.tolist(), position, has_gauss, gauss],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
    random.setstate(tuple(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def requeue(study: optuna.Study, trial: FrozenTrial, max_retries: int) -> bool:
    """Queue a dead or preempted trial's params again as its retry, in Optuna's retry
    bookkeeping (`RetryFailedTrialCallback.retry_history` names the chain), without the
    attributes of its outcome (a fail reason would stick to a retry that succeeds). False
    when its chain used up `max_retries`."""
    history = [*RetryFailedTrialCallback.retry_history(trial), trial.number]
    if len(history) > max_retries:
        return False
    study.add_trial(
        optuna.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={k: v for k, v in trial_attrs.of(trial).items() if k in KEPT_BY_RETRIES},
            system_attrs={"failed_trial": history[0], "retry_history": history},
        )
    )
    return True


def stale_trial_handler(
    tracking_uri: str | None, max_retries: int = 10
) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """What happens to a trial whose worker died: its MLflow run is closed as KILLED and
    its params are queued again (up to `max_retries` times; the retry resumes from the dead
    trial's last checkpoint)."""

    def on_stale(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        run_id = trial_attrs.of(trial).get(keys.RUN_ID)
        if run_id and tracking_uri:
            from tuner.tracking import TrackingStore  # MLflow: loaded only when a worker died

            TrackingStore(tracking_uri).close_lost_run(run_id, trial.number)
        requeue(study, trial, max_retries)

    return on_stale
