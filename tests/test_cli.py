"""The CLI as a user meets it: exit codes, one-line messages, nothing half-made."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import search_cli
from tuner.cli import main


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_bad_space_file_exits_2(workdir, capsys):
    (workdir / "s.yaml").write_text(
        "metric: val_mae\nparams:\n  dropout: {type: float, low: 0.5, high: 0.1}\n"
    )
    code, _, err = _run(["search", "--task", "forecasting", "--space", "s.yaml"], capsys)
    assert code == 2 and "s.yaml: params.dropout: low (0.5) must not be greater" in err


def test_reusing_a_study_name_for_another_metric_is_refused(tiny_space, capsys):
    assert search_cli(tiny_space, 1, "--study", "s", "--quiet") == 0
    other = tiny_space.read_text().replace("metric: val_mae", "metric: val_rmse")
    tiny_space.write_text(other)
    code, _, err = _run(
        [
            "search",
            "--task",
            "forecasting",
            "--space",
            str(tiny_space),
            "--trials",
            "2",
            "--study",
            "s",
        ],
        capsys,
    )
    assert code == 2 and "metric 'val_mae', not 'val_rmse'" in err


def test_best_trials_and_tasks_commands(tiny_space, capsys):
    assert search_cli(tiny_space, 2, "--pruner", "none", "--quiet") == 0
    capsys.readouterr()
    code, out, _ = _run(["best", "--study", "forecasting-air_passengers"], capsys)
    assert code == 0 and "best trial" in out and "models:/forecasting-air_passengers" in out
    code, out, _ = _run(["trials", "--study", "forecasting-air_passengers", "--csv"], capsys)
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith("number,state,value") and len(lines) == 3
    code, out, _ = _run(["tasks"], capsys)
    assert code == 0 and out.startswith("forecasting")
    code, _, err = _run(["best", "--study", "nope"], capsys)
    assert code == 2 and "no such study" in err


def test_console_script_exit_code_and_no_traceback(workdir):
    tuner = Path(sys.executable).parent / "tuner"
    command = [str(tuner)] if tuner.exists() else [sys.executable, "-m", "tuner.cli"]
    done = subprocess.run(
        [*command, "search", "--task", "nope"],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "unknown task" in done.stderr
