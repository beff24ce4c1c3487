"""What `pip install` of the wheel gets: only the `tuner` package (the repository's tasks/
and search_spaces/ installed under it) and the console script, with every module, default
space and demo file. MLflow's loader of a logged model imports tuner.tracking from the
installed package, with no checkout beside it; a user's own `tasks.py` or
`search_spaces.py` (invoke, Celery and Fabric users have one) shadows nothing."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

# the wheel's name for each repository folder it installs
INSTALLED_AS = {"tuner": "tuner", "tasks": "tuner/tasks", "search_spaces": "tuner/search_spaces"}
USER_FILES = {  # what an invoke or Celery user keeps in the folder they work from
    "tasks.py": "raise SystemExit('the user tasks.py ran')\n",
    "search_spaces.py": "raise SystemExit('the user search_spaces.py ran')\n",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # from a clean copy: setuptools would reuse a build/ folder left in the checkout
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "src"
    skip = shutil.ignore_patterns(".*", "build", "mlruns", "*.egg-info", "__pycache__", "tests")
    shutil.copytree(REPO, source, ignore=skip)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(folder), str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (path,) = folder.glob("lstm_tuner-*.whl")
    return path


def test_the_wheel_installs_only_tuner_with_every_module_space_and_demo_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {name.split("/")[0] for name in names} == {
        "tuner",
        wheel.name.split("-py3")[0] + ".dist-info",
    }
    wanted = [
        f"{INSTALLED_AS[folder]}/{path.relative_to(REPO / folder).as_posix()}"
        for folder in INSTALLED_AS
        for path in (REPO / folder).rglob("*")
        if path.suffix in (".py", ".yaml", ".csv", ".npz", ".txt", ".wav")
        and "__pycache__" not in path.parts
    ]
    missing = [name for name in wanted if name not in names]
    assert not missing, missing
    assert "tuner/tracking/pyfunc_model.py" in names and "tuner/tasks/forecasting/spec.py" in names
    assert "tuner/search_spaces/forecasting.yaml" in names


def test_installed_wheel_runs_beside_a_users_tasks_py(wheel, tmp_path):
    """A fresh venv holding only the wheel (its dependencies read from this venv, not
    installed again), run from a folder with a tasks.py and a search_spaces.py."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    where = "import site; print(site.getsitepackages()[0])"
    own = Path(subprocess.check_output([python, "-c", where], text=True).strip())
    (own / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
         str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    added = {p.name for p in own.iterdir()} - {"dependencies.pth", "__pycache__"}
    assert {name for name in added if not name.endswith(".dist-info")} == {"tuner"}
    work = tmp_path / "project"
    work.mkdir()
    for name, text in USER_FILES.items():
        (work / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    api = (
        "import tuner, tuner.tasks\n"
        f"assert tuner.tasks.__file__.startswith({str(own)!r}), tuner.tasks.__file__\n"
        "r = tuner.search('forecasting', trials=1, quiet=True, study='api',\n"
        "                 overrides={'max_epochs': 1, 'hidden_size': 8, 'num_layers': 1})\n"
        "print('best', r.best_value)\n"
    )
    done = subprocess.run([python, "-c", api], cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "best " in done.stdout, done.stderr[-2000:]
    cli = [venv / "bin" / "tuner", "search", "--task", "forecasting", "--trials", "1",
           "--study", "cli", "--set", "max_epochs=1", "--quiet"]  # fmt: skip
    done = subprocess.run(cli, cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "best trial 0" in done.stdout, done.stderr[-2000:]
    listed = subprocess.run([venv / "bin" / "tuner", "trials", "--study", "api"], cwd=work,
                            env=env, capture_output=True, text=True)  # fmt: skip
    assert listed.returncode == 0 and "COMPLETE" in listed.stdout
