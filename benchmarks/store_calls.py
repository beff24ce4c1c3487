"""Store time on a trial's critical path: the calls one airline trial (30 epochs, one
hold-out, 1 thread; benchmarks.overhead's trial (b), a new best) makes to Optuna's storage
and to MLflow's client in the trial's own process, counted and timed, on SQLite and on the
local PostgreSQL, and the trial / plain loop ratio beside them (median of 5 alternating runs).
What a writer process writes (tuner.tracking.writer) is off that path and not counted.

Run: python -m benchmarks.store_calls [label]   (about 3 minutes on 2 cores). Runs on any
commit: where there is no writer (before it), the trial writes everything itself."""

from __future__ import annotations

import contextlib
import functools
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict

import optuna
import torch
from mlflow import MlflowClient

from benchmarks import overhead
from benchmarks.common import REPO, machine

RUNS = 5
CALLS: Counter = Counter()
SECONDS: defaultdict = defaultdict(float)
_depth = {"optuna": 0, "mlflow": 0}


def _counted(family: str, name: str, method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        if _depth[family]:  # a call inside a counted one is part of it
            return method(*args, **kwargs)
        _depth[family] += 1
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            _depth[family] -= 1
            CALLS[f"{family}.{name}"] += 1
            SECONDS[f"{family}.{name}"] += time.perf_counter() - started

    return wrapper


def _instrument() -> None:
    """Every public method of Optuna's RDB storage (each a database round trip), its
    `_get_trials` (what its cache reads all trials with), and MLflow's client's, counted
    where the trial's process calls them."""
    for family, kind in (("optuna", optuna.storages.RDBStorage), ("mlflow", MlflowClient)):
        for name in dir(kind):
            method = getattr(kind, name)
            if (not name.startswith("_") or name == "_get_trials") and callable(method):
                setattr(kind, name, _counted(family, name, method))


def _reset() -> None:
    """Count from the trial's start: not the study's set-up."""
    CALLS.clear()
    SECONDS.clear()


def measure(label: str, storage: str, tracking: str, folder: str) -> dict:
    from tuner.tasks.forecasting.task import DEFAULTS, TASK

    data_path = str(REPO / "tasks" / "data" / "air_passengers.csv")
    settings = {**DEFAULTS, **overhead.SETTINGS, "batch_size": 16, "max_epochs": overhead.EPOCHS}
    data = TASK.load_data({"data": data_path})
    overhead.tuner_trial(folder, f"{label}-warm", data_path, {**settings, "max_epochs": 2},
                         stores=(storage, tracking))  # fmt: skip
    plain, ours, calls, spent = [], [], [], []
    for number in range(RUNS):
        torch.manual_seed(0)
        datamodule = TASK.build_datamodule(data, settings)
        model = TASK.build_model(settings, datamodule)
        plain.append(overhead.plain_loop(datamodule, model, settings))
        ours.append(overhead.tuner_trial(folder, f"{label}-{number}", data_path, settings,
                                         stores=(storage, tracking), on_start=_reset))  # fmt: skip
        counted = Counter(CALLS)
        calls.append(sum(counted.values()))
        spent.append(sum(SECONDS.values()))
    return {
        "ratio": statistics.median(ours) / statistics.median(plain),
        "calls": statistics.median(calls),
        "ms": 1000 * statistics.median(spent),
        "last": counted,
    }


def stores(folder: str) -> dict[str, tuple[str, str]]:
    found = {"SQLite": (f"sqlite:///{folder}/optuna.db", f"sqlite:///{folder}/mlflow.db")}
    sys.path.insert(0, str(REPO))
    with contextlib.suppress(Exception):
        from tests.conftest import create_databases, postgres_available

        if postgres_available():
            names = create_databases("tuner_bench")
            found["PostgreSQL"] = tuple(f"postgresql://postgres@127.0.0.1:5432/{n}" for n in names)
    return found


def main(label: str) -> str:
    torch.set_num_threads(1)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from tuner.runtime.logs import quiet_libraries

    quiet_libraries()
    _instrument()
    folder = tempfile.mkdtemp(prefix="tuner-calls-")
    os.chdir(folder)
    rows = []
    for store, (storage, tracking) in stores(folder).items():
        found = measure(store, storage, tracking, folder)
        top = ", ".join(f"{k} {v}" for k, v in found["last"].most_common(6))
        rows.append(f"| {label} | {store} | {found['calls']:.0f} | {found['ms']:.0f} | "
                    f"{found['ratio']:.2f} | {top} |")  # fmt: skip
    return "\n".join([f"Machine: {machine()}.", "",
                      "| commit | store | calls | ms | trial / plain loop | most called |",
                      "|---|---|---|---|---|---|", *rows])  # fmt: skip


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else "this tree"))
