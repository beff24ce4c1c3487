"""Fine-tune, predict and lineage on real training and a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

import tuner
from tests.conftest import make_long_csv
from tuner.cli import main
from tuner.config.trial_attrs import of as attrs_of
from tuner.models.sources import resolve_source
from tuner.storage.locations import default_tracking_uri, resolve_storage
from tuner.storage.studies import load_study, read_studies


def _shifted_csv(path):
    """Different level, amplitude and period than the source data: the source model is off."""
    t = np.arange(60)
    y = 500 + 3 * t + 80 * np.sign(np.sin(2 * np.pi * t / 6))
    frame = pd.DataFrame(
        {"unique_id": "b", "y": y, "ds": pd.date_range("2001-01-01", periods=60, freq="MS")}
    )
    frame[["unique_id", "ds", "y"]].to_csv(path, index=False)
    return path


@pytest.fixture
def source_study(tiny_space, workdir):
    data = make_long_csv(workdir / "a.csv", n_series=1, length=60)
    result = tuner.search(
        "forecasting",
        trials=2,
        space=str(tiny_space),
        study="src",
        data={"data": str(data)},
        pruner="none",
        quiet=True,
    )
    return result


def _store_counts():
    client = MlflowClient(default_tracking_uri())
    runs = sum(len(client.search_runs([e.experiment_id])) for e in client.search_experiments())
    return runs, len(client.search_registered_models())


def test_every_source_form_resolves_to_the_same_checkpoint(source_study, monkeypatch, capsys):
    uri, storage = default_tracking_uri(), resolve_storage(None)
    forms = [
        f"runs:/{source_study.best_run_id}",
        "models:/src@best",
        f"models:/src/{source_study.model_version}",
        "study:src",
    ]
    sources = [resolve_source(form, uri, storage) for form in forms]
    sources.append(resolve_source(str(sources[0].path), uri, storage))
    assert len({s.lineage["tuner.source_sha256"] for s in sources}) == 1
    assert sources[1].lineage["tuner.source_version"] == source_study.model_version
    assert sources[3].lineage["tuner.source_trial"] == str(source_study.best_trial)
    assert all(
        s.lineage.get("tuner.source_run_id") == source_study.best_run_id for s in sources[:4]
    )

    # the model folder MLflow's own client downloads is a source too, and a hostile copy
    # whose MLmodel points outside the folder is refused
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    folder = Path(mlflow.artifacts.download_artifacts("models:/src@best"))
    downloaded = resolve_source(str(folder), uri, storage)
    assert downloaded.lineage["tuner.source_sha256"] == sources[0].lineage["tuner.source_sha256"]
    assert main(["predict", "--from", str(folder)]) == 0 and "y_hat" in capsys.readouterr().out
    text = (folder / "MLmodel").read_text()
    data = next(line.split(": ")[1] for line in text.splitlines() if "data: " in line)
    (folder / "MLmodel").write_text(text.replace(f"data: {data}", "data: ../../../etc/passwd"))
    assert main(["predict", "--from", str(folder)]) == 2
    assert "names no checkpoint inside the model" in capsys.readouterr().err


def test_finetune_on_shifted_data_improves_and_records_lineage(source_study, workdir, capsys):
    shifted = _shifted_csv(workdir / "b.csv")
    result = tuner.finetune(
        "study:src", data={"data": str(shifted)}, lr=0.01, max_epochs=15, patience=0, quiet=True
    )
    assert result.after < result.before
    client = MlflowClient(default_tracking_uri())
    parent = client.get_run(result.search.parent_run_id)
    assert parent.data.metrics["before_val_mae"] == pytest.approx(result.before)
    assert parent.data.metrics["after_val_mae"] == pytest.approx(result.after)
    # beside it, the same architecture and epochs from fresh weights, on the same rows
    assert parent.data.metrics["scratch_val_mae"] == pytest.approx(result.scratch)
    fresh = load_study("src-ft-b-scratch").best_trial
    assert fresh.value == pytest.approx(result.scratch)
    source_settings = attrs_of(load_study("src").best_trial)["settings"]
    own = attrs_of(fresh)["settings"]
    assert own["lr"] == source_settings["lr"] and own["max_epochs"] == 15
    assert own["hidden_size"] == source_settings["hidden_size"] and own["freeze_layers"] == 0
    tags = parent.data.tags
    assert tags["tuner.source"] == "study:src" and tags["tuner.source_study"] == "src"
    assert tags["tuner.source_run_id"] == source_study.best_run_id
    assert len(tags["tuner.source_sha256"]) == 64
    child = client.get_run(result.search.best_run_id)
    assert child.data.tags["tuner.source_run_id"] == source_study.best_run_id
    assert result.search.model_name == "src-finetuned" and result.search.model_version == "1"

    # a second hop, from the fine-tuned model, is version 2 of the same model
    code = main(
        [
            "finetune",
            "--from",
            "models:/src-finetuned@best",
            "--data",
            str(shifted),
            "--max-epochs",
            "2",
            "--quiet",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "models:/src-finetuned/2" in out and "before -> after" in out
    hops = tuner.lineage("models:/src-finetuned/2")
    assert [h.study for h in hops] == ["src-ft-b-ft-b", "src-ft-b", "src"]
    assert hops[0].source == "models:/src-finetuned@best" and hops[-1].source == ""
    assert main(["lineage", "models:/src-finetuned/2"]) == 0
    assert "original search: study 'src'" in capsys.readouterr().out


def test_freeze_layers_keeps_the_first_layers_fixed(source_study, workdir):
    from tuner.models.finetune import build_for_finetune
    from tuner.tasks.forecasting.task import DEFAULTS, TASK

    source = TASK.build_model({**DEFAULTS, "num_layers": 2, "dropout": 0.0}, None)
    payload = {"hyper_parameters": dict(source.hparams), "state_dict": source.state_dict()}
    settings = {"lr": 0.001, "dropout": 0.2, "freeze_layers": 1}
    model = build_for_finetune(payload, settings, TASK)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in source.state_dict().items())
    assert all(m.p == 0.2 for m in model.modules() if isinstance(m, torch.nn.Dropout))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "backbone.lstm.weight_ih_l0" not in trainable
    assert "backbone.lstm.weight_ih_l1" in trainable and "head.1.weight" in trainable
    assert model.backbone.lstm.dropout == 0.2 and model.hparams.lr == 0.001


def test_predict_writes_future_rows_in_original_units(source_study, workdir):
    out = workdir / "forecast.csv"
    assert main(["predict", "--from", "study:src", "--out", str(out)]) == 0
    table = pd.read_csv(out, parse_dates=["ds"])
    assert list(table.columns) == ["unique_id", "ds", "y_hat"] and len(table) == 6
    assert table.ds.iloc[0] == pd.Timestamp("2005-01-01")
    assert table.ds.diff().dropna().dt.days.between(28, 31).all()
    history = pd.read_csv(workdir / "a.csv").y
    assert table.y_hat.between(
        history.min() - 3 * history.std(), history.max() + 3 * history.std()
    ).all()


@pytest.mark.parametrize(
    "source, words",
    [
        ("missing.ckpt", "no such checkpoint file"),
        ("notes.ckpt", "not a"),
        ("runs:/0123456789abcdef", "no MLflow run"),
        ("models:/nope/1", "registered model 'nope' has no version '1'"),
        ("models:/src@nope", "has no alias 'nope'"),
        ("study:nope", "no such study"),
    ],
)
def test_bad_sources_exit_2_and_change_nothing(source_study, workdir, capsys, source, words):
    (workdir / "notes.ckpt").write_text("not a checkpoint")
    before = _store_counts()
    code = main(["finetune", "--from", source])
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1
    assert _store_counts() == before


def test_a_tuned_finetune_warm_starts_from_an_earlier_finetune_of_the_same_source(
    source_study, workdir, capsys
):
    from tuner.config import keys
    from tuner.reports.ranking import ranked_trials
    from tuner.storage.studies import load_study

    shifted = str(_shifted_csv(workdir / "b.csv"))
    common = {"data": {"data": shifted}, "max_epochs": 3, "patience": 0, "quiet": True}
    tuner.finetune("study:src", trials=3, study="ft-first", **common)
    best = ranked_trials(load_study("ft-first"))[0]

    tuner.finetune("study:src", trials=2, study="ft-warm", warm_start="ft-first", **common)
    first = load_study("ft-warm").trials[0]
    assert first.params == best.params
    assert attrs_of(first)[keys.WARM_START] == f"ft-first#{best.number}"

    # a search is not a fine-tune of this source, and a plain fine-tune searches nothing
    before = _store_counts()
    code = main(["finetune", "--from", "study:src", "--data", shifted, "--trials", "2",
                 "--warm-start", "src"])  # fmt: skip
    assert code == 2 and "a search, not a fine-tune" in capsys.readouterr().err
    code = main(["finetune", "--from", "study:src", "--data", shifted, "--warm-start", "ft-first"])
    assert code == 2 and "--warm-start needs --trials" in capsys.readouterr().err
    assert _store_counts() == before and "src-ft-b" not in read_studies(resolve_storage(None))
