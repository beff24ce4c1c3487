"""`tuner export`: an ONNX export registered beside the study's model and served by MLflow's
own `mlflow models serve`; an export past its tolerance refused with nothing registered;
lineage from the export back to its study; a search constrained on the int8 form's costs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

import tuner
from tests.conftest import AIR, answers, free_port, run_cli, wait_for
from tuner.config.trial_attrs import of as attrs_of
from tuner.storage.locations import default_tracking_uri
from tuner.storage.studies import load_study


def _serve(model: str, folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": default_tracking_uri(), "PATH": path}
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model, "--env-manager",
               "local", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    log = open(folder / "serve.log", "w")  # noqa: SIM115 - closed with the server
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # fmt: skip
    return server, f"http://127.0.0.1:{port}"


def _invoke(url: str, frame: pd.DataFrame) -> list[dict]:
    body = json.dumps({"dataframe_split": frame.to_dict(orient="split")}).encode()
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["predictions"]


def test_onnx_export_is_registered_with_lineage_and_served_by_mlflow(tiny_space, workdir):
    tuner.search("forecasting", trials=2, space=str(tiny_space), study="exp", quiet=True)
    result = tuner.export("study:exp")
    assert result.name == "exp-onnx" and result.version == "1"
    assert result.figures["largest_difference"] < 1e-3 and result.figures["relative_loss"] <= 0.01

    client = MlflowClient(default_tracking_uri())
    version = client.get_model_version("exp-onnx", "1")
    best = attrs_of(load_study("exp").best_trial)
    assert version.tags["tuner.source_study"] == "exp"
    assert version.tags["tuner.source_run_id"] == best["mlflow_run_id"]
    assert version.tags["tuner.export_form"] == "onnx"
    run = client.get_run(version.run_id)
    assert run.data.metrics["onnx_val_mae"] == pytest.approx(result.figures["onnx_val_mae"])
    assert run.info.experiment_id == client.get_run(best["mlflow_run_id"]).info.experiment_id
    assert [hop.study for hop in tuner.lineage("models:/exp-onnx/1")][-1] == "exp"

    server, url = _serve("models:/exp-onnx/1", workdir)
    try:
        assert wait_for(lambda: answers(url, "/ping") or server.poll() is not None, timeout=120)
        assert server.poll() is None, (workdir / "serve.log").read_text()
        frame = pd.read_csv(AIR)
        answer = _invoke(url, frame)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    expected = tuner.predict("study:exp", data=frame)
    assert [row["ds"][:10] for row in answer] == expected["ds"].astype(str).str[:10].tolist()
    assert [row["y_hat"] for row in answer] == pytest.approx(expected["y_hat"].tolist(), rel=1e-4)


def test_an_export_past_its_tolerance_is_refused_and_nothing_is_registered(tiny_space, workdir):
    tuner.search("forecasting", trials=1, space=str(tiny_space), study="tol", quiet=True)
    loss = tuner.export("study:tol", format="int8", tolerance=0.9, register=False).figures[
        "relative_loss"
    ]
    # int8 nearly always loses a little; where it happens to score better, no tolerance
    # refuses it (a better figure is never a loss)
    tolerance = loss / 2 if loss > 0 else 0.0
    done = run_cli(workdir, "export", "--from", "study:tol", "--format", "int8",
                   "--tolerance", repr(tolerance), "--out", "kept")  # fmt: skip
    names = [m.name for m in MlflowClient(default_tracking_uri()).search_registered_models()]
    if loss > 0:
        assert done.returncode == 1, done.stderr
        assert (
            done.stderr.count("\n") == 1
            and "loses" in done.stderr
            and "not registered" in done.stderr
        )
        assert "tol-int8" not in names and not (workdir / "kept").exists()
    else:
        assert done.returncode == 0 and "tol-int8" in names


def test_a_search_constrained_on_the_int8_form_measures_it_before_training(workdir, tiny_space):
    result = tuner.search(
        "forecasting", trials=3, space=str(tiny_space), study="small",
        constraint="latency_ms_int8<=1000,size_mb_int8<=0.02", quiet=True, pruner="none",
    )  # fmt: skip
    trials = load_study("small").trials
    for trial in trials:
        attrs = attrs_of(trial)
        assert attrs["latency_ms_int8"] > 0 and attrs["size_mb_int8"] > 0
        feasible = attrs["size_mb_int8"] <= 0.02
        assert (trial.state.name == "COMPLETE") == feasible, (trial.number, attrs)
        assert ("epochs" in attrs) == feasible  # an infeasible one is never trained
    assert result.counts["complete"] == sum(attrs_of(t)["size_mb_int8"] <= 0.02 for t in trials)


def test_what_is_refused_before_an_export_starts(workdir, capsys):
    from tuner.cli import main

    (workdir / "full").mkdir()
    (workdir / "full" / "note.txt").write_text("mine")
    refusals = {
        ("--format", "fp16"): "--format 'fp16': expected one of onnx, int8",
        ("--tolerance", "1.5"): "--tolerance 1.5: expected a fraction",
        ("--out", "full"): "--out full: holds files already",
    }
    for flags, message in refusals.items():
        assert main(["export", "--from", "missing.ckpt", *flags]) == 2
        assert message in capsys.readouterr().err
    assert not (workdir / "mlruns").exists() and (workdir / "full" / "note.txt").exists()


def test_a_manifest_never_points_the_loader_outside_its_folder(tmp_path):
    from tuner.contract.exported import MANIFEST, read_manifest
    from tuner.errors import CheckpointError

    graph = {"t": {"file": "../../elsewhere.onnx", "outputs": "t"}}
    manifest = {"checkpoint": "model.ckpt", "forms": {"onnx": [graph]}}
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="names files outside it"):
        read_manifest(tmp_path)
