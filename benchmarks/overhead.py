"""Framework overhead: the same LSTM, data, seed, batch size and epochs (1 CPU thread)
trained by (a) a plain PyTorch loop over in-memory tensors and (b) lstm-tuner's own path
for one trial (the Fabric loop of tuner.training.loop, pruning reports, per-epoch metrics to
MLflow, best
weights kept, test evaluation, checkpoint logged and registered: the first trial of its
study, always a new best), beside (c) that loop alone and (d) a trial that does not become
the best (most of a sweep's). Runs alternate in one process; reports min / median seconds
per epoch and the ratios to (a); the target is judged on (b), the dearer trial.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch

from benchmarks.common import REPO, machine, verdict

EPOCHS = 30
SETTINGS = {
    "hidden_size": 64,
    "num_layers": 1,
    "dropout": 0.0,
    "lr": 3e-3,
    "input_len": 24,
    "horizon": 12,
    "scaling": "window",
    "transform": "none",
    "grad_clip": 0.0,
    "folds": 1,  # one trial on one hold-out, as the plain loop trains
}


def plain_loop(datamodule, model, settings: dict, precision: str = "32-true") -> float:
    """The hand-written baseline: Adam, MSE, shuffled slices, a validation pass per epoch,
    on the model's device (data moved there once; bf16-mixed: autocast)."""
    device = next(model.parameters()).device
    x, y = (t.to(device) for t in datamodule.tensors["train"][:2])
    vx, vy = (t.to(device) for t in datamodule.tensors["val"][:2])
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    epochs, batch_size = settings["max_epochs"], settings["batch_size"]
    generator = torch.Generator().manual_seed(0)
    mixed = precision == "bf16-mixed"
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator).to(device)
        for start in range(0, len(x), batch_size):
            index = order[start : start + batch_size]
            with torch.autocast(device.type, torch.bfloat16, enabled=mixed):
                loss = torch.nn.functional.mse_loss(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, torch.bfloat16, enabled=mixed):
            torch.nn.functional.mse_loss(model(vx), vy).item()
    return (time.perf_counter() - started) / epochs


def loop_alone(datamodule, model, settings: dict, precision: str = "32-true") -> float:
    """(c) The trial's training loop with nothing recorded (tuner.training.loop.FitLoop, no
    callbacks): what the loop itself costs, apart from the trial's recording."""
    from tuner.training.loop import FitLoop

    device = next(model.parameters()).device
    loop = FitLoop("gpu" if device.type == "cuda" else "cpu", precision, settings["max_epochs"])
    started = time.perf_counter()
    loop.fit(model, datamodule)
    return (time.perf_counter() - started) / settings["max_epochs"]


def tuner_trial(
    folder: str,
    name: str,
    data_path: str,
    settings: dict,
    accelerator: str = "cpu",
    precision: str = "32-true",
    behind: bool = False,
    stores: tuple[str, str] | None = None,
    on_start: Callable[[], None] = lambda: None,
) -> float:
    """One real trial through tuner.study.trial.run_trial, recorded in MLflow as a sweep
    records it (its records queued for the writer process beside it, where the tree has
    one): the first of its study, so it becomes the best (its model logged and registered),
    or with `behind` the second, after one no trial beats (its weights kept as a
    top-`keep_top` trial's). `stores`: (Optuna storage, tracking URI), SQLite files in
    `folder` by default; `on_start` runs just before the timed trial."""
    from tuner.config.space import SearchSpace
    from tuner.storage.locations import prepare_local_folders
    from tuner.storage.studies import open_storage
    from tuner.study.samplers import decides_at, make_pruner
    from tuner.study.trial import TrialContext, run_trial
    from tuner.tasks import get_task
    from tuner.tracking import StudyTracker

    task = get_task("forecasting")
    data = task.load_data({"data": data_path})
    space = SearchSpace("val_mae", "minimize", (), settings)
    storage, tracking = stores or (
        f"sqlite:///{folder}/optuna.db",
        f"sqlite:///{folder}/mlflow.db",
    )
    prepare_local_folders(storage, tracking, None)  # the stores as a search opens them
    tracker = StudyTracker(tracking, f"overhead-{name}", f"file://{folder}/artifacts")
    tracker.open_study({}, {})
    study = optuna.create_study(  # the pruner a search uses by default
        storage=open_storage(storage),
        study_name=f"overhead-{name}",
        pruner=make_pruner("median", settings["max_epochs"]),
    )
    context = TrialContext(
        task, data, {}, space, tracker, 0, Path(folder), accelerator, task.build_model,
        target=2 if behind else 1, precision=precision, reports=decides_at("median"),
    )  # fmt: skip
    if behind:
        study.add_trial(optuna.trial.create_trial(value=0.0))
    with warnings.catch_warnings(), _writer_beside(tracker, storage, Path(folder)):
        warnings.filterwarnings("ignore", "Heartbeat of storage")  # started by optimize
        trial = study.ask()
        _writer_ready(tracker, Path(folder) / "journal")  # as after a sweep's first trial
        on_start()
        started = time.perf_counter()
        run_trial(context, trial)
        seconds = (time.perf_counter() - started) / settings["max_epochs"]
    return seconds  # the writer's queue is written after the clock stopped, as in a sweep


def _writer_ready(tracker: Any, journal: Path, timeout: float = 30) -> None:
    """The writer process started and loaded, where this tree has one."""
    if getattr(tracker, "queue", None) is None:
        return
    tracker.queue.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (journal / f".ready-{os.getpid()}").exists():
            return
        time.sleep(0.05)


def _writer_beside(tracker: Any, storage: str, folder: Path) -> Any:
    """The sweep's writer process, where this tree has one (tuner.tracking.writer)."""
    try:
        from tuner.tracking.writer import beside
    except ImportError:  # an older tree: the trial writes its records itself
        return contextlib.nullcontext()
    return beside(tracker, storage, folder / "journal")


def long_series_csv(folder: str, series: int = 4, length: int = 1000) -> str:
    """Seasonal series with trend and noise, long enough for ~3,800 training windows."""
    rng = np.random.default_rng(0)
    steps = np.arange(length)
    frames = [
        pd.DataFrame(
            {
                "unique_id": f"s{i}",
                "ds": pd.date_range("2000-01-01", periods=length, freq="D"),
                "y": 100
                + 0.05 * steps * (i + 1)
                + 10 * np.sin(2 * np.pi * steps / 7)
                + rng.normal(0, 2, length),
            }
        )
        for i in range(series)
    ]
    path = Path(folder) / "long.csv"
    pd.concat(frames).to_csv(path, index=False)
    return str(path)


def measure(
    folder: str,
    data_path: str,
    epochs: int,
    batch_size: int,
    repeats: int,
    accelerator: str = "cpu",
    precision: str = "32-true",
) -> tuple[list[float], list[float], list[float], list[float], int]:
    """Seconds per epoch of (a), (b), (c) and (d), alternating, and the number of training
    windows."""
    from tuner.tasks.forecasting.task import DEFAULTS, TASK

    settings = {**DEFAULTS, **SETTINGS, "batch_size": batch_size, "max_epochs": epochs}
    data = TASK.load_data({"data": data_path})
    stem, device = Path(data_path).stem, "cuda" if accelerator == "gpu" else "cpu"
    run = f"{stem}-{accelerator}-{precision}"
    tuner_trial(folder, f"{run}-warm-up", data_path, {**settings, "max_epochs": 1},
                accelerator, precision)  # fmt: skip
    plain, ours, alone, behind = [], [], [], []
    for number in range(repeats):
        for kind, times in ((plain_loop, plain), (loop_alone, alone)):
            torch.manual_seed(0)
            datamodule = TASK.build_datamodule(data, settings)
            model = TASK.build_model(settings, datamodule).to(device)
            times.append(kind(datamodule, model, settings, precision))
        ours.append(
            tuner_trial(folder, f"{run}-{number}", data_path, settings, accelerator, precision)
        )
        behind.append(tuner_trial(folder, f"{run}-{number}-behind", data_path, settings,
                                  accelerator, precision, behind=True))  # fmt: skip
    return plain, ours, alone, behind, len(datamodule.tensors["train"][0])


def main(repeats: int = 9) -> str:
    torch.set_num_threads(1)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from tuner.runtime.logs import quiet_libraries

    quiet_libraries()
    folder = tempfile.mkdtemp(prefix="tuner-overhead-")
    workloads = [
        ("airline", str(REPO / "tasks" / "data" / "air_passengers.csv"), EPOCHS, 16, repeats),
        ("4 long series", long_series_csv(folder), 15, 64, 3),
    ]
    rows, ratios = [], {}
    for name, path, epochs, batch, runs in workloads:
        plain, ours, alone, behind, windows = measure(folder, path, epochs, batch, runs)
        ratios[name] = statistics.median(ours) / statistics.median(plain)
        loop_ratio = statistics.median(alone) / statistics.median(plain)
        label = f"{name}: {windows} train windows, batch {batch}, {epochs} epochs, {runs} runs"
        rows += [
            f"| {label} | (a) plain loop | {min(plain):.4f} | {statistics.median(plain):.4f} | |",
            f"| | (b) lstm-tuner trial | {min(ours):.4f} | {statistics.median(ours):.4f} | "
            f"**{ratios[name]:.2f}** |",
            f"| | (c) its training loop alone | {min(alone):.4f} | "
            f"{statistics.median(alone):.4f} | {loop_ratio:.2f} |",
            f"| | (d) a trial that does not become the best | {min(behind):.4f} | "
            f"{statistics.median(behind):.4f} | "
            f"{statistics.median(behind) / statistics.median(plain):.2f} |",
        ]
    return "\n".join(
        [
            "## Overhead: plain PyTorch loop vs one lstm-tuner trial (1 CPU thread)",
            "",
            f"Machine: {machine()}. Forecasting LSTM, hidden 64, input 24, horizon 12; runs "
            f"alternate (a) to (d) in one process.",
            "",
            "| workload | path | min s/epoch | median s/epoch | ratio to (a) |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"**Ratio b / a on the airline: {ratios['airline']:.2f}** (target <= 1.5, goal "
            f"1.10: {verdict(ratios['airline'] <= 1.5)}); on epochs with more work: "
            f"{ratios['4 long series']:.2f} (target <= 1.10: "
            f"{verdict(ratios['4 long series'] <= 1.10)}). (b) adds costs per trial "
            f"(MLflow child run, the model's costs, test pass, checkpoint log + "
            f"registration when it is the best), per epoch (the task's validation metrics "
            f"in original units, the training loss read once, best weights copied when "
            f"they improve, and every 5th epoch after the 5th the median pruner's report "
            f"to Optuna's storage) and per batch (Fabric's backward and optimizer step "
            f"wrappers, a stop-flag check). (d) is a study's second trial, behind a better "
            f"first: its weights are kept as a top-`keep_top` trial's file, no model is "
            f"logged or registered.",
            "",
        ]
    )


if __name__ == "__main__":
    print(main())
