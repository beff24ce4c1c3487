"""The CLI as a user meets it: exit codes, one-line messages, nothing half-made."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, search_cli
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


READING_COMMANDS = (
    ["--help"],
    ["best", "--study", "forecasting-air_passengers"],
    ["trials", "--study", "forecasting-air_passengers"],
    ["compare", "forecasting-air_passengers", "forecasting-air_passengers"],
    ["lineage", "study:forecasting-air_passengers"],
)


def test_reading_commands_import_neither_torch_nor_lightning(tiny_space, capsys):
    """`tuner best` and friends answer at once: they never load the training stack."""
    assert search_cli(tiny_space, 1, "--pruner", "none", "--quiet") == 0
    for argv in READING_COMMANDS:
        done = run_cli(tiny_space.parent, *argv, env={"PYTHONPROFILEIMPORTTIME": "1"})
        assert done.returncode == 0, (argv, done.stderr[-2000:])
        imported = _imported(done.stderr)
        assert "optuna" in imported or argv == ["--help"]  # the profile was read
        assert not imported & {"torch", "lightning", "lightning.pytorch"}, argv
        if argv[0] in ("best", "trials", "compare"):  # Optuna's records suffice
            assert "mlflow" not in imported, argv
    assert "forecasting-air_passengers" in done.stdout  # lineage found the study
    wrong = ["ensemble", "--study", "nope", "--seeds", "3"]  # refused before torch loads
    done = run_cli(tiny_space.parent, *wrong, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert done.returncode == 2 and "--study 'nope': no such study" in done.stderr
    assert "optuna" in _imported(done.stderr) and "torch" not in _imported(done.stderr)


def _imported(profile: str) -> set[str]:
    """The modules a `python -X importtime` profile names."""
    lines = profile.splitlines()
    return {line.split("|")[-1].strip() for line in lines if line.startswith("import time:")}


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


def test_every_command_takes_the_store_flags_and_names_the_store_it_read(tiny_space, capsys):
    """Records kept somewhere else than the default: every command finds them with the
    same two flags, and `tuner best` prints the tracking store it was given."""
    stores = [
        "--storage",
        "sqlite:///elsewhere/o.db",
        "--tracking-uri",
        "sqlite:///elsewhere/m.db",
    ]
    assert search_cli(tiny_space, 1, "--pruner", "none", "--quiet", "--study", "s", *stores) == 0
    capsys.readouterr()
    code, out, err = _run(["best", "--study", "s", *stores], capsys)
    assert code == 0 and "(sqlite:///elsewhere/m.db)" in out, err
    for argv in (
        ["trials", "--study", "s"],
        ["lineage", "study:s"],
        ["report", "--study", "s", "--out", "r"],
        ["compare", "s", "--out", "c.csv"],
        ["predict", "--from", "study:s"],
    ):
        code, out, err = _run([*argv, *stores], capsys)
        assert code == 0, (argv, err)
    code, out, _ = _run(["lineage", "study:s", *stores], capsys)
    assert "trial 0 of study 's'" in out and "original search: study 's'" in out
    assert not Path("mlruns/optuna.db").exists() and not Path("mlruns/mlflow.db").exists()


def test_predict_takes_the_data_flags_of_the_model_task(tiny_space, capsys):
    """A wide CSV with two series and a time column named otherwise: predict reads it with
    the same --time-col / --target flags a search takes."""
    assert search_cli(tiny_space, 1, "--pruner", "none", "--quiet", "--study", "w") == 0
    rows = ["when,a,b"] + [f"2000-{m:02d}-01,{m},{2 * m}" for m in range(1, 13)]
    Path("wide.csv").write_text("\n".join(rows) + "\n")
    capsys.readouterr()
    argv = ["predict", "--from", "study:w", "--data", "wide.csv", "--time-col", "when"]
    code, out, err = _run([*argv, "--target", "b"], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split() == ["unique_id", "ds", "y_hat"] and len(lines) == 1 + 6
    assert all(line.split()[0] == "b" for line in lines[1:])


def test_search_help_says_where_the_data_flags_are(capsys):
    with pytest.raises(SystemExit) as done:
        main(["search", "--help"])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "tuner search --task NAME --help" in out
    assert "(an integer >= 1 and <= 1000000; default 20)" in out
    with pytest.raises(SystemExit):
        main(["search", "--task", "forecasting", "--help"])
    assert "--time-col" in capsys.readouterr().out


def test_a_closed_pipe_ends_quietly(workdir):
    """`tuner trials ... | head -1`: more rows than the pipe holds, and no traceback."""
    import optuna

    from tuner.storage.sqlite_wal import use_wal

    Path("mlruns").mkdir()
    use_wal(Path("mlruns/optuna.db").absolute())  # as a sweep writes it: 1000 quick commits
    study = optuna.create_study(study_name="big", storage="sqlite:///mlruns/optuna.db")
    lr = optuna.distributions.FloatDistribution(1e-4, 1e-1)
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={"lr": 1e-3 + i * 1e-6}, distributions={"lr": lr}, value=i
            )
            for i in range(1000)
        ]
    )
    command = f"{sys.executable} -m tuner.cli trials --study big | head -1"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, shell=True, capture_output=True, text=True, env=env)
    assert done.stdout.strip().startswith("number") and done.stderr == ""
