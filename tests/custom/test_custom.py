"""Your own LightningModule as a task, tried with code nobody here wrote: Lightning's demo
language model (tests/custom/tiny_lm.py subclasses it as a user would) from a .py file in a
folder not on sys.path, with its default space beside it; searched, resumed, predicted,
fine-tuned, loaded by MLflow's pyfunc and served by `mlflow models serve` in fresh processes
whose path lacks that folder. Lightning's BoringModel and ManualOptimBoringModel: what the
check reports and what a search refuses before anything is created."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tuner
from tests.conftest import answers, free_port, wait_for
from tuner.config.trial_attrs import of as attrs_of
from tuner.errors import UsageError
from tuner.storage.locations import default_tracking_uri

HERE = Path(__file__).parent
WORDS = "the a cat dog bird sees chases likes eats small big red old fish mouse".split()


@pytest.fixture
def language_model(workdir: Path) -> Path:
    """tiny_lm.py and its space in a folder of its own, beside a small text."""
    folder = workdir / "elsewhere" / "lm"
    folder.mkdir(parents=True)
    for name in ("tiny_lm.py", "tiny_lm.yaml"):
        shutil.copy(HERE / name, folder / name)
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(WORDS, size=rng.integers(4, 9))) for _ in range(300)]
    (folder / "wikitext-2.txt").write_text("\n".join(lines) + "\n")
    return folder / "tiny_lm.py"


def fresh_env(workdir: Path) -> dict[str, str]:
    """A process whose path holds neither the module's folder nor the working one."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "MLFLOW_TRACKING_URI": default_tracking_uri(),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}  # fmt: skip


def test_lightnings_demo_language_model_is_searched_served_and_fine_tuned(
    language_model, workdir, capsys
):
    from tuner.cli import main

    task = str(language_model)
    found = {f.topic: f for f in tuner.check(task)}
    assert found["latency"].refuses == "--constraint latency_ms"  # no forward
    assert not any(f.refuses == "search" for f in found.values())
    with pytest.raises(UsageError, match="latency_ms needs TinyLM.forward"):
        tuner.search(task, trials=2, study="lm-latency", constraint="latency_ms<=50")
    assert not (workdir / "mlruns").exists()  # refused before any store was made

    first = tuner.search(task, trials=3, study="lm", quiet=True)
    assert first.counts["complete"] + first.counts["pruned"] == 3
    assert set(first.best_params) == {"nhid", "lr"}  # the space beside the module
    resumed = tuner.search(task, trials=4, study="lm", quiet=True)
    assert sum(resumed.counts.values()) == 4 and resumed.model_version is not None

    with pytest.raises(UsageError, match="its model is your own .*pass --task"):
        tuner.ensemble("lm", top=2)  # the study's record never chooses the code
    capsys.readouterr()
    assert main(["ensemble", "--study", "lm", "--top", "2", "--task", task]) == 0
    printed = capsys.readouterr().out
    assert "ensemble of trials" in printed and "models:/lm-ensemble/1" in printed
    fits = tuner.ensemble("lm", seeds=2, task=task)
    assert len(fits.members) == 2 and fits.model_name == "lm-seeds-ensemble"
    assert np.isfinite(fits.metrics["val_loss"])
    assert fits.single["val_loss"] != fits.metrics["val_loss"]  # averaged, not the lead alone
    averaged = tuner.predict("models:/lm-ensemble/1", data=pd.DataFrame({"prompt": ["the cat"]}),
                             task=task)  # fmt: skip
    assert averaged["next_word"].iloc[0] in [*WORDS, "<eos>"]

    shown = tuner.predict("models:/lm@best", data=pd.DataFrame({"prompt": ["the cat"]}),
                          task=task)  # fmt: skip
    assert shown["next_word"].iloc[0] in [*WORDS, "<eos>"]
    exported = tuner.export("models:/lm@best", task=task, tolerance=0.01)
    assert exported.figures["largest_difference"] < 1e-3 and exported.version == "1"
    tuned = tuner.finetune("models:/lm@best", task=task, trials=1, max_epochs=1, quiet=True)
    assert np.isfinite(tuned.before) and tuned.after is not None and tuned.scratch is not None

    elsewhere = workdir / "empty"
    elsewhere.mkdir()
    with _served("models:/lm@best", elsewhere, fresh_env(workdir)) as url:
        loaded = subprocess.run(
            [sys.executable, "-c", "import mlflow, pandas as pd; print(mlflow.pyfunc.load_model("
             "'models:/lm@best').predict(pd.DataFrame({'prompt': ['the cat']})).to_json())"],
            cwd=elsewhere, env=fresh_env(workdir), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert loaded.returncode == 0, loaded.stderr[-2000:]
        body = json.dumps({"dataframe_split": {"columns": ["prompt"], "data": [["the cat"]]}})
        request = urllib.request.Request(f"{url}/invocations", data=body.encode(),
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)["predictions"]
    assert json.loads(loaded.stdout)["next_word"]["0"] == answer[0]["next_word"]
    assert answer[0]["next_word"] == shown["next_word"].iloc[0]


class _served:
    """`mlflow models serve -m MODEL --env-manager local` started in `folder`."""

    def __init__(self, model: str, folder: Path, env: dict[str, str]) -> None:
        self.port, self.folder = free_port(), folder
        self.command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model,
                        "--env-manager", "local", "--host", "127.0.0.1", "--port",
                        str(self.port)]  # fmt: skip
        self.env = env

    def __enter__(self) -> str:
        self.log = open(self.folder / "serve.log", "w")
        self.server = subprocess.Popen(self.command, cwd=self.folder, env=self.env,
                                       stdout=self.log, stderr=subprocess.STDOUT,
                                       start_new_session=True)  # fmt: skip
        url = f"http://127.0.0.1:{self.port}"
        assert wait_for(lambda: answers(url, "/ping") or self.server.poll() is not None, 120)
        assert self.server.poll() is None, (self.folder / "serve.log").read_text()[-3000:]
        return url

    def __exit__(self, *exc: object) -> None:
        os.killpg(self.server.pid, signal.SIGKILL)
        self.server.wait()
        self.log.close()


BORING = """from lightning.pytorch.demos.boring_classes import {name}
MODEL = {name}
"""


@pytest.mark.parametrize(
    ("name", "reported", "refusal"),
    [
        ("BoringModel", "'val_loss' is never logged in validation_step", "list-style"),
        ("ManualOptimBoringModel", "optimises manually", "optimises manually"),
    ],
)
def test_lightnings_boring_models_are_refused_before_anything_is_created(
    workdir, capsys, name, reported, refusal
):
    from tuner.cli import main

    module = workdir / f"{name.lower()}.py"
    module.write_text(BORING.format(name=name))
    assert main(["tasks", "--check", str(module)]) == 2
    report = capsys.readouterr().out
    assert reported in report and refusal in report and "a search would be refused" in report
    assert "--freeze-layers needs an nn.LSTM" in report
    assert main(["search", "--task", str(module), "--trials", "1"]) == 2
    assert refusal in capsys.readouterr().err
    assert not (workdir / "mlruns").exists()


LABELLED = """
import lightning.pytorch as pl
import pandas as pd
import torch
from torch import nn


class Labelled(pl.LightningDataModule):
    def __init__(self, data: str = "a.csv", batch_size: int = 4):
        super().__init__()
        self.frame, self.batch_size = pd.read_csv(data), batch_size

    def model_args(self):
        return {"labels": " ".join(sorted(self.frame["label"].unique()))}


class Classifier(pl.LightningModule):
    def __init__(self, labels: str = "", hidden_size: int = 8, lr: float = 0.01):
        super().__init__()
        self.save_hyperparameters()
        self.lstm = nn.LSTM(1, hidden_size, batch_first=True)


MODEL, DATA = Classifier, Labelled
"""


def test_state_the_data_decides_travels_as_hyperparameters_and_a_fine_tune_keeps_it(workdir):
    from tuner.contract.registry import get_task
    from tuner.errors import DataError

    (workdir / "labelled.py").write_text(LABELLED)
    pd.DataFrame({"x": [0.1, 0.2], "label": ["b", "a"]}).to_csv(workdir / "a.csv", index=False)
    pd.DataFrame({"x": [0.1, 0.2], "label": ["a", "c"]}).to_csv(workdir / "c.csv", index=False)
    task = get_task("labelled.py")
    assert task.spec.table["batch_size"].model is False and task.spec.table["lr"].model
    datamodule = task.build_datamodule({"data": "a.csv"}, task.defaults)
    model = task.build_model(task.defaults, datamodule)
    assert model.hparams.labels == "a b"  # built with what the data decided
    task.fits_model(dict(model.hparams), {"data": "a.csv"})  # the same labels: fine
    with pytest.raises(DataError, match="the new data gives labels = 'a c'.*built with 'a b'"):
        task.fits_model(dict(model.hparams), {"data": "c.csv"})


class InMain:
    pass


def test_classes_given_to_the_api_must_be_importable_again(monkeypatch):
    from tuner.custom.loading import reference_of

    assert reference_of(UsageError, None) == "tuner.errors:UsageError"
    monkeypatch.setattr(InMain, "__module__", "__main__")
    with pytest.raises(UsageError, match="InMain is defined in __main__"):
        tuner.search(model=InMain, trials=1)


SMALL = """
import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def loader():
    return DataLoader(TensorDataset(torch.randn(16, 5, 1), torch.randn(16, 1)), batch_size=8)


class Small(pl.LightningModule):
    def __init__(self, hidden_size: int = 4, lr: float = 0.01):
        super().__init__()
        self.save_hyperparameters()
        self.lstm, self.head = nn.LSTM(1, hidden_size, batch_first=True), nn.Linear(hidden_size, 1)

    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])

    def training_step(self, batch, batch_idx):
        return nn.functional.mse_loss(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", nn.functional.mse_loss(self(batch[0]), batch[1]))

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        return {CONFIGURED}

    def train_dataloader(self):
        return loader()

    def val_dataloader(self):
        return {VALIDATION}
{MORE}
MODEL = Small
"""
PLATEAU = (
    '{"optimizer": optimizer, "lr_scheduler": '
    "torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)}"
)


@pytest.mark.parametrize(
    ("configured", "validation", "more", "refusal"),
    [
        ("optimizer", "loader()", "", None),
        (PLATEAU, "loader()", "", "ReduceLROnPlateau needs a metric"),
        ("optimizer", "[]", "", "Small.val_dataloader gives no batches"),
        (
            "optimizer",
            "loader()",
            "\nclass Data(pl.LightningDataModule):\n    pass\nDATA = Data\n",
            "defines train_dataloader, val_dataloader and DATA is given too",
        ),
    ],  # fmt: skip
)
def test_what_the_trial_loop_cannot_do_is_refused_by_the_check(
    workdir, configured, validation, more, refusal
):
    module = workdir / "small.py"
    module.write_text(SMALL.replace("{CONFIGURED}", configured)
                      .replace("{VALIDATION}", validation).replace("{MORE}", more))  # fmt: skip
    findings = tuner.check(str(module))
    refused = [f.text for f in findings if f.refuses == "search"]
    if refusal is None:
        assert refused == [] and {f.topic for f in findings} >= {"metric", "latency"}
    else:
        assert len(refused) == 1 and refusal in refused[0], refused


def test_classes_take_their_modules_metric_and_data_is_refused_where_it_is_not_taken(
    workdir, monkeypatch
):
    from tuner.contract.registry import get_task

    text = SMALL.replace("{CONFIGURED}", "optimizer").replace("{VALIDATION}", "loader()")
    (workdir / "metric_module.py").write_text(text.replace("{MORE}", 'METRIC = "val_x"\n'))
    monkeypatch.syspath_prepend(str(workdir))
    task = get_task("metric_module:Small")
    assert (task.metric, task.direction) == ("val_x", "minimize")
    with pytest.raises(UsageError, match="--data: Small takes no `data` argument"):
        task.load_data({"data": "new.csv"})


def test_a_model_whose_validation_step_bypasses_forward_cannot_be_averaged(workdir):
    from tuner.contract.registry import get_task
    from tuner.custom.checks import ENSEMBLE

    text = SMALL.replace("{CONFIGURED}", "optimizer").replace("{VALIDATION}", "loader()")
    direct = "nn.functional.mse_loss(self.head(self.lstm(batch[0])[0][:, -1]), batch[1])"
    text = text.replace("{MORE}", "").replace(
        'self.log("val_loss", nn.functional.mse_loss(self(batch[0]), batch[1]))',
        f'self.log("val_loss", {direct})',
    )
    (workdir / "direct.py").write_text(text)
    findings = {f.topic: f for f in tuner.check(str(workdir / "direct.py"))}
    assert findings["ensembles"].refuses == ENSEMBLE
    assert "validation_step never calls Small.forward" in findings["ensembles"].text
    assert "expected it to score self(x)" in findings["ensembles"].text  # what to do
    assert not any(f.refuses == "search" for f in findings.values())
    task = get_task(str(workdir / "direct.py"))
    with pytest.raises(UsageError, match="could not average its members"):
        task.check_ensemble({}, task.defaults)


def test_freezing_counts_the_layers_of_the_models_own_lstm(workdir):
    from tuner.contract.registry import get_task
    from tuner.custom.checks import FREEZE, inspect_model
    from tuner.custom.loading import load_parts
    from tuner.study import search_space

    text = SMALL.replace("{CONFIGURED}", "optimizer").replace("{VALIDATION}", "loader()")
    (workdir / "small.py").write_text(text.replace("{MORE}", ""))
    task, parts = get_task("small.py"), load_parts("small.py")
    for frozen, refused in ((1, []), (2, ["--freeze-layers 2: lstm has 1 layer(s)"])):
        space = search_space(None, task).with_fixed({"freeze_layers": frozen})
        found = [f.text for f in inspect_model(parts, task.spec, space, {}) if f.refuses == FREEZE]
        assert [text.split(";")[0] for text in found] == refused


def test_workers_import_the_users_module_again_and_its_costs_are_constrained(workdir, capfd):
    import optuna

    from tuner.storage.locations import resolve_storage

    folder = workdir / "elsewhere"
    folder.mkdir()
    text = SMALL.replace("{CONFIGURED}", "optimizer").replace("{VALIDATION}", "loader()")
    (folder / "small.py").write_text(text.replace("{MORE}", ""))
    result = tuner.search(str(folder / "small.py"), trials=4, workers=2, study="small-workers",
                          overrides={"max_epochs": 1}, pruner="none", quiet=True,
                          constraint="params<=200")  # fmt: skip
    assert result.counts["complete"] == 4
    assert capfd.readouterr() == ("", "")  # quiet: nothing from this process or its workers
    study = optuna.load_study(study_name="small-workers", storage=resolve_storage(None))
    workers = {attrs_of(t)["worker"].rsplit(":", 1)[1] for t in study.trials}
    assert str(os.getpid()) not in workers  # each trial ran in a worker process
    ran = [t for t in study.trials if t.state.name == "COMPLETE"]
    for trial in ran:  # Small(hidden_size=h): an LSTM(1, h) and a Linear(h, 1)
        h = trial.params["hidden_size"]
        assert attrs_of(trial)["params"] == 4 * h * (1 + h + 2) + h + 1
        assert trial.system_attrs["constraints:params<=200"] == attrs_of(trial)["params"] - 200
