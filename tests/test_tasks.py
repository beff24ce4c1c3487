"""One conformance test for every registered task (STYLE G12): tiny settings, real
training, the metric logged each epoch, checkpoint save -> load -> predict equal, and a
fine-tune from the study's best."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from mlflow import MlflowClient

import tuner
from tasks import TASKS, get_task
from tuner.checkpoints import load_checkpoint, restore_model, save_checkpoint
from tuner.sources import resolve_source
from tuner.stores import default_tracking_uri, resolve_storage
from tuner.study import default_data_path

PREDICT_OPTIONS = {"proba": True, "prompt": "A", "length": 20, "temperature": 1.0, "seed": 3}


@pytest.mark.parametrize("name", list(TASKS))
def test_task_conformance(name, workdir):
    task = get_task(name)
    assert task.default_data and default_data_path(task)
    result = tuner.search(
        name, trials=1, overrides=dict(task.smoke), study=f"conf-{name}", pruner="none", quiet=True
    )
    assert result.counts["complete"] == 1 and math.isfinite(result.best_value)
    client = MlflowClient(default_tracking_uri())
    history = client.get_metric_history(result.best_run_id, task.metric)
    assert [m.step for m in history] == list(range(int(task.smoke["max_epochs"])))
    assert client.get_metric_history(result.best_run_id, "val_loss")

    source = resolve_source(f"study:conf-{name}", default_tracking_uri(), resolve_storage(None))
    payload = load_checkpoint(source.path, task=name)
    first = restore_model(payload, task.model_class)
    copy = save_checkpoint(
        workdir / "copy.ckpt", first, name, payload["settings"], payload["meta"]
    )
    second = restore_model(load_checkpoint(copy, task=name), task.model_class)
    data_args = payload["meta"]["data_args"]
    one = task.predict(first, data_args, payload["settings"], PREDICT_OPTIONS)
    two = task.predict(second, data_args, payload["settings"], PREDICT_OPTIONS)
    assert isinstance(one, pd.DataFrame) and len(one) > 0
    pd.testing.assert_frame_equal(one, two)

    tuned = tuner.finetune(f"study:conf-{name}", max_epochs=1, quiet=True)
    assert math.isfinite(tuned.before) and math.isfinite(tuned.after)
    assert tuned.search.model_name == f"conf-{name}-finetuned"
