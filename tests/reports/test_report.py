"""`tuner report` and `tuner compare` on real finished studies."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from mlflow import MlflowClient

import tuner
from tests.conftest import report_sections
from tuner.cli import main
from tuner.storage.locations import default_tracking_uri


def test_report_writes_plots_and_table_and_logs_them_on_the_parent_run(tiny_space, capsys):
    result = tuner.search(
        "forecasting", trials=3, space=str(tiny_space), study="r", pruner="none", quiet=True
    )
    assert main(["report", "--study", "r", "--out", "report"]) == 0
    names = {
        "history.png",
        "importances.png",
        "parallel.png",
        "intermediate.png",
        "learning_curves.png",
        "report.html",
    }
    from pathlib import Path

    folder = Path("report")
    assert names <= {p.name for p in folder.iterdir()}
    assert all((folder / n).stat().st_size > 5000 for n in names if n.endswith(".png"))
    page = (folder / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 6  # self-contained
    assert f"best val_mae = {result.best_value:.4g} (trial {result.best_trial})" in page
    sections = report_sections(page)
    assert list(sections) == ["best", "view0", "history", "importances", "parallel", "curves",
                              "learning", "top", "others"]  # fmt: skip
    assert sections["view0"]["text"].startswith("Forecast against actual on the test part")
    best = sections["best"]  # the best trial beside its baselines, on the same rows
    assert best["rows"][0][:2] == [f"val_mae (trial {result.best_trial})", "validation"]
    assert {"val_snaive_mae", "test_mae", "test_snaive_mae"} <= {row[0] for row in best["rows"]}
    assert "below 10" in sections["importances"]["text"]  # 3 trials: a caveat
    top = sections["top"]["rows"]  # complete trials only, best first, the params that vary
    assert int(top[0][0]) == result.best_trial and len(top) == result.counts["complete"]
    client = MlflowClient(default_tracking_uri())
    logged = {a.path for a in client.list_artifacts(result.parent_run_id, "report")}
    assert {f"report/{n}" for n in names} <= logged
    note = client.get_run(result.parent_run_id).data.tags["mlflow.note.content"]
    assert "tuner finetune --from study:r" in note and "3 complete" in note


def test_compare_ui_and_report_read_several_studies_on_a_shared_mlflow_server(
    tiny_space, mlflow_server, capsys
):
    """A team's view: two studies tracked on a real `mlflow server` (http), compared side by
    side, each opened by `tuner ui` on its own runs table, and a report logged over http."""
    remote = mlflow_server.url
    results = {
        name: tuner.search(
            "forecasting",
            trials=trials,
            space=str(tiny_space),
            study=name,
            pruner="none",
            tracking_uri=remote,
            quiet=name == "a",
        )  # fmt: skip
        for name, trials in (("a", 1), ("b", 2))
    }
    said = capsys.readouterr().out
    assert "trial 1 " in said and "View run" not in said  # MLflow's links at every run's end
    assert main(["compare", "a", "b", "--out", "cmp.csv"]) == 0
    table = pd.read_csv("cmp.csv")
    assert table.study.tolist() == ["a", "b"] and table.complete.tolist() == [1, 2]
    assert (table.wall_s > 0).all() and table.best_params.str.contains("hidden_size").all()
    assert "written to cmp.csv" in capsys.readouterr().out
    client = MlflowClient(remote)
    for name in results:
        assert main(["ui", "--tracking-uri", remote, "--study", name]) == 0
        experiment = client.get_experiment_by_name(name)
        url = capsys.readouterr().out.strip()
        assert url == (f"MLflow UI: {remote}/#/experiments/{experiment.experiment_id}/runs?"
                       "viewStateShareKey=tuner&workflowType=machine_learning")  # fmt: skip
    assert main(["report", "--study", "b", "--tracking-uri", remote, "--out", "rb"]) == 0
    logged = {a.path for a in client.list_artifacts(results["b"].parent_run_id, "report")}
    assert "report/report.html" in logged


def test_a_classifiers_report_shows_its_confusion_matrix_on_the_test_part(workdir):
    result = tuner.search("classification", trials=1, study="cls", max_epochs=1,
                          settings={"hidden_size": 8}, pruner="none", quiet=True)  # fmt: skip
    page = tuner.report("cls", out="cls-report").read_text()
    sections = report_sections(page)
    title = sections["view0"]["text"]
    right, total = map(int, re.search(r"\((\d+) of (\d+) right\)", title).groups())
    assert title.startswith("Confusion matrix on the test part") and 0 <= right <= total
    test_acc = result.test_metrics["test_acc"]
    assert abs(right / total - test_acc) < 1e-6  # the same model, the same test rows
    assert "view0.png" in {p.name for p in (workdir / "cls-report").iterdir()}


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_parallel_coordinates_draw_every_trial_visibly_on_white():
    """Optuna's Blues scale draws the worst trials near white: none is lighter than a mid
    blue here (luminance below 0.75; white is 1)."""
    import numpy as np
    import optuna

    from tuner.reports.plots import PLOTS

    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2 + t.suggest_int("y", 1, 5), 12)
    lines = PLOTS["parallel"][1](study).collections[0]
    colours = lines.to_rgba(lines.get_array())[:, :3]
    assert len(colours) == 12
    assert (colours @ np.array([0.2126, 0.7152, 0.0722])).max() < 0.75
