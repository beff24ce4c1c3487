"""Sampler and pruner of a study, by the names `--sampler` and `--pruner` take
(tuner.config.options.SAMPLERS / PRUNERS), and the seed each process samples with."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
from collections.abc import Callable, Sequence

import optuna

from tuner.config import keys
from tuner.config.goals import SETS_CONSTRAINTS, Constraint, sampler_constraints
from tuner.config.options import MEDIAN_STARTUP, PRUNERS, SAMPLERS
from tuner.errors import UsageError

NEEDS = {"cmaes": ("cmaes",), "gp": ("scipy",)}  # packages a sampler imports when it runs


def check_sampler(name: str) -> None:
    """A sampler Optuna can run here: its optional packages are installed."""
    if name not in SAMPLERS:
        raise UsageError(f"--sampler {name!r}: expected one of {', '.join(SAMPLERS)}")
    missing = [pkg for pkg in NEEDS.get(name, ()) if importlib.util.find_spec(pkg) is None]
    if missing:
        raise UsageError(
            f"--sampler {name}: needs the {missing[0]} package, which is not installed; "
            f"pip install {missing[0]}, or use --sampler tpe"
        )


def make_sampler(
    name: str, seed: int, trials: int, constraints: Sequence[Constraint] = ()
) -> optuna.samplers.BaseSampler:
    """TPE's random start-up phase is cut to a third of the budget (3 to 10 trials): with
    Optuna's default of 10, a 10-trial study never leaves random search. constant_liar
    keeps parallel workers from proposing what a running trial already tries (Optuna 5
    turns it on by default, the 4.x versions we allow do not). With `constraints`, TPE and
    GP learn where the feasible models are (the others only skip the infeasible ones)."""
    check_sampler(name)
    feasible = {}
    if constraints and not SETS_CONSTRAINTS:  # Optuna 5 reads what the trial set instead
        feasible = {"constraints_func": sampler_constraints(constraints)}
    if name == "tpe":
        startup = max(3, min(10, trials // 3))
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=startup, multivariate=True, constant_liar=True, **feasible
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.GPSampler(seed=seed, **feasible)


# The median pruner is the default: replayed on the recorded curves of 20-trial airline
# sweeps without pruning (6 seeds, benchmarks/RESULTS.md), it kept the best trial of every
# sweep with 4 backtests when asked every epoch (43% of the epochs); Hyperband pruned the
# best trial in 3 or 4 of the 6, judging on noisy early epochs.
# MEDIAN_STARTUP (tuner.config.options): complete trials before it prunes (TPE's own
# start-up is 3 to 10)
MEDIAN_WARMUP = 5  # epochs (steps) a trial trains before it may be stopped
# and then it decides every 5th epoch: a trial talks to Optuna's storage only where the
# pruner can decide (`decides_at`), and a report + check costs about 8 ms, as much as an
# airline epoch. Replayed (RESULTS.md), reporting every 5th epoch trained 37% (4 backtests)
# and 45% (one hold-out) of the epochs and kept the best trial in 11 of 12 sweeps; every
# epoch, 43% / 50% and 12 of 12
MEDIAN_INTERVAL = 5


def make_pruner(name: str, steps: int) -> optuna.pruners.BasePruner:
    """The pruner `--pruner` names, for trials of `steps` reports (epochs x folds)."""
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=steps, reduction_factor=3
        )
    if name == "median":
        return optuna.pruners.MedianPruner(
            MEDIAN_STARTUP, n_warmup_steps=MEDIAN_WARMUP, interval_steps=MEDIAN_INTERVAL
        )
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UsageError(f"--pruner {name!r}: expected one of {', '.join(PRUNERS)}")


def decides_at(pruner: str | optuna.pruners.BasePruner) -> Callable[[int], bool]:
    """The steps at which `pruner` can stop a trial, the only ones a trial reports to
    Optuna's storage at (the whole curve goes to MLflow). Hyperband (min_resource 1,
    reduction 3) promotes at steps 1, 3, 9, 27...; a pruner object of the caller's hears
    every step."""
    if pruner == "median":
        return lambda step: step >= MEDIAN_WARMUP and (step - MEDIAN_WARMUP) % MEDIAN_INTERVAL == 0
    if pruner == "hyperband":
        return _power_of_three
    if pruner == "none":
        return lambda step: False
    return lambda step: True


def _power_of_three(step: int) -> bool:
    while step > 1 and step % 3 == 0:
        step //= 3
    return step == 1


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def sampler_seed(study: optuna.Study, seed: int, worker_index: int | None) -> int:
    """The seed this process samples with. A fresh study (no trial yet, made by this process
    or by the launcher of these workers) samples from `seed` itself, so the same command
    gives the same sweep; a study that holds trials, or that another process made, samples
    from the seed mixed with its trial count and this process, so a resumed, extended or
    second-terminal run never repeats the params of the first (the same seed would draw
    the same sequence again)."""
    host = socket.gethostname()
    creator = study.user_attrs.get(keys.CREATED_BY)
    mine = creator in (f"{host}:{os.getpid()}", f"{host}:{os.getppid()}")
    if mine and not study.trials:
        return seed + 1000 * (worker_index or 0)
    mixed = f"{seed}:{worker_index}:{len(study.trials)}:{this_process()}"
    return int.from_bytes(hashlib.sha256(mixed.encode()).digest()[:4], "big")
