from __future__ import annotations

import pytest
import torch

from tests.conftest import REPO
from tuner.contract.checkpoints import load_checkpoint, restore_model, save_checkpoint
from tuner.contract.datafiles import sha256_of
from tuner.errors import CheckpointError
from tuner.tasks.forecasting.task import DEFAULTS, TASK

SETTINGS = {**DEFAULTS, "hidden_size": 8, "num_layers": 2}


@pytest.fixture
def checkpoint(tmp_path):
    model = TASK.build_model(SETTINGS, None)
    return save_checkpoint(
        tmp_path / "m.ckpt", model, "forecasting", SETTINGS, {"trial": 3}
    ), model


def test_round_trip_restores_architecture_and_weights(checkpoint):
    path, model = checkpoint
    payload = load_checkpoint(path, task="forecasting")
    restored = restore_model(payload, TASK)
    assert restored.hparams.num_layers == 2 and restored.hparams.hidden_size == 8
    x = torch.randn(3, SETTINGS["input_len"])
    model.eval()
    assert torch.equal(model(x), restored(x))
    assert payload["meta"] == {"trial": 3}
    assert not list(path.parent.glob(".*.tmp"))  # the atomic write left no temp file


def test_lightning_reads_our_checkpoints_too(checkpoint):
    path, _ = checkpoint
    restored = TASK.model_class.load_from_checkpoint(path, weights_only=True)
    assert restored.hparams.hidden_size == 8


def test_bad_sources_raise_one_clear_error(tmp_path, checkpoint):
    path, _ = checkpoint
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.ckpt")
    text = tmp_path / "notes.ckpt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a"):
        load_checkpoint(text)
    truncated = tmp_path / "cut.ckpt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(truncated)
    with pytest.raises(
        CheckpointError, match="checkpoint of task 'forecasting', but task 'charlm'"
    ):
        load_checkpoint(path, task="charlm")
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="not an lstm-tuner checkpoint"):
        load_checkpoint(plain)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickles_that_need_code_are_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"format": "lstm-tuner/1", "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="refused: loading it would run code"):
        load_checkpoint(path)


def test_sha256_changes_with_content(checkpoint, tmp_path):
    path, _ = checkpoint
    other = tmp_path / "other.ckpt"
    other.write_bytes(path.read_bytes() + b"x")
    assert len(sha256_of(path)) == 64 and sha256_of(path) != sha256_of(other)


STORED = REPO / "tests" / "data"  # written by lstm-tuner at commit 7e3bbbc, tiny models
SHIPPED = REPO / "tasks" / "data"
OLD_INPUTS = {
    "forecasting": ["--data", str(SHIPPED / "air_passengers.csv")],
    "classification": ["--data", str(SHIPPED / "japanese_vowels.npz")],
    "charlm": ["--prompt", "ROMEO:", "--length", "20"],
    "speech": ["--data", str(SHIPPED / "speech" / "fsdd" / "7_theo_3.wav")],
}


@pytest.mark.parametrize("task", sorted(OLD_INPUTS))
def test_checkpoints_of_an_older_version_still_load_and_predict(task, workdir, capsys):
    """Written before the Task contract moved to tuner/ and settings were declared: every
    task's old checkpoint restores and predicts through today's CLI."""
    from tuner.cli import main

    path = STORED / f"{task}-7e3bbbc.ckpt"
    payload = load_checkpoint(path, task=task)
    assert payload["pytorch-lightning_version"] and payload["meta"]["study"] == f"old-{task}"
    code = main(["predict", "--from", str(path), *OLD_INPUTS[task]])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert len(out.strip().splitlines()) >= 1 + (task != "charlm")
    assert not (workdir / "mlruns").exists()


def test_a_model_registered_by_an_older_version_still_predicts_and_fine_tunes(workdir, capsys):
    """Before models were MLflow Models, the registry's source was the .ckpt file's artifact
    URI under the run's checkpoint/ folder: recorded here as that code (7e3bbbc) did."""
    from mlflow import MlflowClient

    from tuner.cli import main
    from tuner.storage.locations import default_tracking_uri

    (workdir / "mlruns").mkdir()
    client = MlflowClient(default_tracking_uri())
    experiment = client.create_experiment("old", (workdir / "mlruns" / "artifacts").as_uri())
    run_id = client.create_run(experiment, tags={"tuner.role": "trial"}).info.run_id
    client.log_artifact(run_id, str(STORED / "forecasting-7e3bbbc.ckpt"), "checkpoint")
    source = f"{client.get_run(run_id).info.artifact_uri}/checkpoint/forecasting-7e3bbbc.ckpt"
    client.create_registered_model("old")
    version = client.create_model_version("old", source=source, run_id=run_id)
    client.set_registered_model_alias("old", "best", version.version)
    data = ["--data", str(SHIPPED / "air_passengers.csv")]

    assert main(["predict", "--from", "models:/old@best", *data]) == 0
    by_alias = capsys.readouterr().out
    assert main(["predict", "--from", str(STORED / "forecasting-7e3bbbc.ckpt"), *data]) == 0
    assert by_alias == capsys.readouterr().out and "y_hat" in by_alias
    argv = ["finetune", "--from", "models:/old/1", *data, "--max-epochs", "1", "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "before -> after fine-tuning" in capsys.readouterr().out
