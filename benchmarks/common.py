"""Shared helpers of the benchmarks: run the real CLI in a scratch project, read the study."""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from tuner.config.trial_attrs import of as attrs_of

REPO = Path(__file__).resolve().parents[1]


def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="tuner-bench-"))


def run_cli(folder: Path, *args: str, timeout: int = 1800) -> tuple[float, str]:
    """(wall seconds, output) of `tuner ARGS` run in `folder` (its own mlruns/)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tuner.cli", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tuner {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started, done.stdout


def search_in_scratch(space: str, *args: str) -> tuple[Path, float]:
    """`tuner search --task forecasting --space <space> ARGS --quiet` in a new scratch
    project; returns the folder (to read the study back) and the wall seconds."""
    folder = scratch()
    (folder / "space.yaml").write_text(space)
    wall, _ = run_cli(
        folder, "search", "--task", "forecasting", "--space", "space.yaml", *args, "--quiet"
    )
    return folder, wall


def load(folder: Path, study: str) -> optuna.Study:
    return optuna.load_study(study_name=study, storage=f"sqlite:///{folder}/mlruns/optuna.db")


def epochs_of(trial: optuna.trial.FrozenTrial) -> int:
    """Epochs a finished trial trained, every fold together (Optuna holds only the steps its
    pruner decided at; studies older than the `epochs` attribute reported every epoch)."""
    return int(attrs_of(trial).get("epochs", len(trial.intermediate_values)))


def epoch_budget(trial: optuna.trial.FrozenTrial) -> int:
    """The epochs a trial trains when nothing prunes it: max_epochs in each of its folds."""
    settings = attrs_of(trial).get("settings", {})
    return int(settings.get("max_epochs", 0)) * max(1, int(settings.get("folds") or 1))


def cpu_model() -> str:
    """The CPU's model name, without trademark marks ("Intel Xeon Platinum ...")."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((line.split(":", 1)[1] for line in info.splitlines() if "model name" in line), "")
    return re.sub(r"\((R|TM)\)", "", name).strip() or platform.machine()


def machine() -> str:
    import lightning
    import torch

    return (
        f"{cpu_model()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"lightning {lightning.__version__}, optuna {optuna.__version__}"
    )


BENCH_MARK = "<!-- measured by make bench: everything below is regenerated -->"


def verdict(met: bool) -> str:
    """How RESULTS.md says whether a target was reached."""
    return "met" if met else "not met"


def stamped(section: str, command: str) -> str:
    """A measured section (it starts with its `## ` heading) with the day it was measured
    and the command that measured it under its heading: RESULTS.md holds current figures
    only, and says where each came from."""
    heading, _, body = section.partition("\n")
    stamp = f"_Measured {datetime.date.today().isoformat()} by `{command}`._"
    return f"{heading}\n\n{stamp}\n{body}"


def this_command() -> str:
    """The command line of a benchmark run on its own (`python -m benchmarks.X ...`)."""
    main = sys.modules["__main__"]
    name = main.__spec__.name if main.__spec__ else Path(sys.argv[0]).name
    return " ".join(["python -m", name, *sys.argv[1:]])


def write_section(section: str, command: str | None = None) -> None:
    """Put one measured section (it starts with its `## ` heading) into RESULTS.md in place
    of the earlier one, for a benchmark run on its own; `make bench` rewrites everything
    below its mark, so a new section of a benchmark outside it goes above the mark."""
    results = Path(__file__).parent / "RESULTS.md"
    section = stamped(section, command or this_command())
    heading = section.splitlines()[0]
    text = results.read_text()
    if heading in text:
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section.rstrip() + "\n" + (text[end:] if end != -1 else "")
    elif BENCH_MARK in text:
        text = text.replace(BENCH_MARK, section.rstrip() + "\n\n" + BENCH_MARK)
    else:
        text = text.rstrip() + "\n\n" + section
    results.write_text(text)


def print_and_record(section: str) -> None:
    """A benchmark run on its own: show its section and put it into RESULTS.md."""
    print(section)
    write_section(section)
