"""Framework overhead: the same LSTM, data, seed, batch size and epochs (1 CPU thread)
trained by (a) a plain PyTorch loop over in-memory tensors and (b) lstm-tuner's own path
for one trial (Lightning Trainer, pruning callback, per-epoch metrics to MLflow, best
weights kept, test evaluation, checkpoint logged and registered). Runs alternate a, b in
one process; reports min / median seconds per epoch and the ratio b / a.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import torch

from benchmarks.common import REPO, machine

EPOCHS = 30
SETTINGS = {
    "hidden_size": 64,
    "num_layers": 1,
    "dropout": 0.0,
    "lr": 3e-3,
    "batch_size": 16,
    "input_len": 24,
    "horizon": 12,
    "max_epochs": EPOCHS,
    "scaling": "window",
    "transform": "none",
    "grad_clip": 0.0,
}


def plain_loop(datamodule, model) -> float:
    """The hand-written baseline: Adam, MSE, shuffled slices, a validation pass per epoch."""
    x, y = datamodule.tensors["train"][:2]
    vx, vy = datamodule.tensors["val"][:2]
    optimizer = torch.optim.Adam(model.parameters(), lr=SETTINGS["lr"])
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(EPOCHS):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), SETTINGS["batch_size"]):
            index = order[start : start + SETTINGS["batch_size"]]
            loss = torch.nn.functional.mse_loss(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            torch.nn.functional.mse_loss(model(vx), vy).item()
    return (time.perf_counter() - started) / EPOCHS


def tuner_trial(folder: str, number: int) -> float:
    """One real trial through tuner.objective.run_trial, recorded in MLflow."""
    from tasks import get_task
    from tuner.objective import TrialContext, run_trial
    from tuner.space import SearchSpace
    from tuner.tracking import StudyTracker

    task = get_task("forecasting")
    data = task.load_data({"data": str(REPO / "tasks" / "data" / "air_passengers.csv")})
    space = SearchSpace("val_mae", "minimize", (), SETTINGS)
    tracker = StudyTracker(
        f"sqlite:///{folder}/mlflow.db", f"overhead-{number}", f"file://{folder}/artifacts"
    )
    tracker.open_study({}, {})
    study = optuna.create_study(
        storage=f"sqlite:///{folder}/optuna.db", study_name=f"overhead-{number}"
    )
    context = TrialContext(
        task, data, {}, space, tracker, 0, Path(folder), "cpu", task.build_model, target=1
    )
    trial = study.ask()
    started = time.perf_counter()
    run_trial(context, trial)
    return (time.perf_counter() - started) / EPOCHS


def main(repeats: int = 5) -> str:
    torch.set_num_threads(1)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from tasks.forecasting import DEFAULTS, TASK
    from tuner.study import quiet_libraries

    quiet_libraries()
    data = TASK.load_data({"data": str(REPO / "tasks" / "data" / "air_passengers.csv")})
    settings = {**DEFAULTS, **SETTINGS}
    folder = tempfile.mkdtemp(prefix="tuner-overhead-")
    tuner_trial(folder, -1)  # warm-up: MLflow creates its tables once
    plain, ours = [], []
    for number in range(repeats):
        torch.manual_seed(0)
        datamodule = TASK.build_datamodule(data, settings)
        plain.append(plain_loop(datamodule, TASK.build_model(settings, datamodule)))
        ours.append(tuner_trial(folder, number))
    ratio = statistics.median(ours) / statistics.median(plain)
    return "\n".join(
        [
            "## Overhead: plain PyTorch loop vs one lstm-tuner trial (1 CPU thread)",
            "",
            f"Machine: {machine()}. Airline windows (85 train), hidden 64, batch 16, {EPOCHS} "
            f"epochs, {repeats} alternating repeats.",
            "",
            "| path | min s/epoch | median s/epoch |",
            "|---|---|---|",
            f"| (a) plain loop | {min(plain):.4f} | {statistics.median(plain):.4f} |",
            f"| (b) lstm-tuner trial (MLflow on) | {min(ours):.4f} | "
            f"{statistics.median(ours):.4f} |",
            "",
            f"**Ratio b / a (medians): {ratio:.2f}** (target <= 1.10). (b) includes its fixed "
            f"per-trial costs (MLflow child run, test pass, checkpoint log + registration) "
            f"spread over {EPOCHS} epochs.",
            "",
        ]
    )


if __name__ == "__main__":
    print(main())
