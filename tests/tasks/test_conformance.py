"""One conformance test for every registered task (STYLE G12): tiny settings, real
training, the metric logged each epoch, checkpoint save -> load -> predict equal, and a
fine-tune from the study's best."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

import tuner
from tests.conftest import report_sections
from tuner.config.trial_attrs import of as attrs_of
from tuner.contract.checkpoints import load_checkpoint, restore_model, save_checkpoint
from tuner.models.sources import resolve_source
from tuner.storage.locations import default_tracking_uri, resolve_storage
from tuner.storage.studies import load_study
from tuner.study import default_data_path
from tuner.tasks import TASKS, get_task
from tuner.tasks.forecasting.task import DATA
from tuner.tracking.pyfunc_model import TunerModel

VIEWS = {  # what each task's user looks at in the report, from the best model
    "forecasting": "Forecast against actual on the test part",
    "classification": "Confusion matrix on the test part",
    "speech": "Sample transcripts on the test part",
    "charlm": "A sample of 300 characters from the best model",
}
PREDICT_OPTIONS = {"proba": True, "prompt": "A", "length": 20, "temperature": 1.0, "seed": 3}


@pytest.mark.parametrize("name", list(TASKS))
def test_task_conformance(name, workdir, monkeypatch):
    task = get_task(name)
    assert task.default_data and default_data_path(task)
    result = tuner.search(
        name, trials=1, overrides=dict(task.smoke), study=f"conf-{name}", pruner="none", quiet=True
    )
    assert result.counts["complete"] == 1 and math.isfinite(result.best_value)
    client = MlflowClient(default_tracking_uri())
    history = client.get_metric_history(result.best_run_id, task.metric)
    settings = attrs_of(load_study(f"conf-{name}").trials[0])["settings"]
    folds = int(settings.get("folds") or 1)  # small shipped data: K folds, one after another
    assert [m.step for m in history] == list(range(folds * int(task.smoke["max_epochs"])))
    assert client.get_metric_history(result.best_run_id, "val_loss")
    sections = report_sections(tuner.report(f"conf-{name}", out="report").read_text())
    assert {"best", "view0", "history", "curves", "learning", "top", "others"} <= set(sections)
    assert sections["view0"]["text"].startswith(VIEWS[name])

    source = resolve_source(f"study:conf-{name}", default_tracking_uri(), resolve_storage(None))
    payload = load_checkpoint(source.path, task=name)
    first = restore_model(payload, task)
    copy = save_checkpoint(
        workdir / "copy.ckpt", first, name, payload["settings"], payload["meta"]
    )
    second = restore_model(load_checkpoint(copy, task=name), task)
    data_args = payload["meta"]["data_args"]
    one = task.predict(first, data_args, payload["settings"], PREDICT_OPTIONS)
    two = task.predict(second, data_args, payload["settings"], PREDICT_OPTIONS)
    assert isinstance(one, pd.DataFrame) and len(one) > 0
    pd.testing.assert_frame_equal(one, two)

    _pyfunc_predicts_as_tuner_does(name, monkeypatch)
    _exports_answer_as_the_float_model(name)

    tuned = tuner.finetune(f"study:conf-{name}", max_epochs=1, quiet=True)
    assert math.isfinite(tuned.before) and math.isfinite(tuned.after)
    assert tuned.search.model_name == f"conf-{name}-finetuned"


def _user_frame(name: str) -> tuple[pd.DataFrame, dict]:
    """The input a user of MLflow would hand the model, made from the shipped data files
    (not by the task's own code), with the params the task's predict takes."""
    if name == "forecasting":
        return pd.read_csv(DATA / "air_passengers.csv"), {}
    if name == "classification":
        arrays = np.load(DATA / "japanese_vowels.npz")
        rows = [
            {"sequence_id": f"q{i}", "step": t, **{f"x{f}": v for f, v in enumerate(step)}}
            for i in range(3)
            for t, step in enumerate(arrays["X"][i][: arrays["lengths"][i]])
        ]
        return pd.DataFrame(rows), {"proba": True}
    if name == "speech":
        folder = DATA / "speech" / "fsdd"
        paths = pd.read_csv(folder / "manifest.csv")["path"].head(3)
        return pd.DataFrame({"path": [str(folder / path) for path in paths]}), {}
    return pd.DataFrame({"prompt": ["ROMEO:"]}), {"length": 20, "temperature": 1.0, "seed": 3}


def _pyfunc_predicts_as_tuner_does(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's own client, given only the registry alias, predicts what `tuner predict`
    does from the same study."""
    frame, params = _user_frame(name)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", default_tracking_uri())
    model = mlflow.pyfunc.load_model(f"models:/conf-{name}@best")
    by_mlflow = model.predict(frame, params=params or None)
    by_tuner = tuner.predict(f"study:conf-{name}", data=frame, options=params)
    assert len(by_mlflow) > 0
    pd.testing.assert_frame_equal(
        by_mlflow.reset_index(drop=True), by_tuner.reset_index(drop=True)
    )


def _exports_answer_as_the_float_model(name: str) -> None:
    """ONNX and int8 exports of the study's best model: the ONNX one within float rounding
    of it (outputs and validation figure), the int8 one within its tolerance, and either
    one, loaded as MLflow loads it, answers the float model's table."""
    frame, params = _user_frame(name)
    by_float = tuner.predict(f"study:conf-{name}", data=frame, options=params)
    for form, tolerance, largest in (("onnx", 0.01, 1e-3), ("int8", 0.25, None)):
        result = tuner.export(f"study:conf-{name}", format=form, tolerance=tolerance,
                              out=form, register=False)  # fmt: skip
        figures = result.figures
        assert figures["relative_loss"] <= tolerance and figures[f"{form}_size_mb"] > 0
        if largest is not None:
            assert figures["largest_difference"] < largest
            assert figures[f"onnx_{result.metric}"] == pytest.approx(
                figures[f"float_{result.metric}"], rel=1e-4, abs=1e-6
            )
        table = TunerModel(str(result.folder)).predict(frame, params)
        assert list(table.columns) == list(by_float.columns) and len(table) == len(by_float)
        if form == "onnx":
            for column in by_float.columns:
                if pd.api.types.is_float_dtype(by_float[column]):
                    assert table[column].to_numpy() == pytest.approx(
                        by_float[column].to_numpy(), rel=1e-4, abs=1e-4
                    )
                else:
                    assert table[column].tolist() == by_float[column].tolist()
