"""What `pip install` of the wheel gets: every module of the framework and the tasks, the
default spaces and the demo data. MLflow's loader of a logged model imports
tuner.tracking from the installed package, with no checkout beside it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from tests.conftest import REPO


def test_the_wheel_holds_every_module_space_and_demo_file(tmp_path):
    # from a clean copy: setuptools would reuse a build/ folder left in the checkout
    source = tmp_path / "src"
    skip = shutil.ignore_patterns(".*", "build", "mlruns", "*.egg-info", "__pycache__")
    shutil.copytree(REPO, source, ignore=skip)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("lstm_tuner-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = [
        path.relative_to(REPO).as_posix()
        for folder in ("tuner", "tasks", "search_spaces")
        for path in (REPO / folder).rglob("*")
        if path.suffix in (".py", ".yaml", ".csv", ".npz", ".txt", ".wav")
        and "__pycache__" not in path.parts
    ]
    missing = [name for name in wanted if name not in names]
    assert not missing, missing
    assert "tuner/tracking/pyfunc_model.py" in names and "tuner/study/_record.py" in names
    assert not any(name.startswith("tests/") for name in names)
