"""No third-party warning reaches a user in normal use: the commands run in a process of their
own, with Python's own warning filters, as a user's shell runs them (pytest's filters hide
warnings in-process)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import TINY_SPACE

COMMANDS = [
    ["search", "--task", "forecasting", "--space", "tiny.yaml", "--trials", "2", "--study", "f"],
    ["search", "--task", "classification", "--trials", "1", "--study", "c", "--set",
     "max_epochs=1", "--set", "hidden_size=8"],
    ["trials", "--study", "f"],
    ["best", "--study", "f"],
    ["report", "--study", "f"],
    ["compare", "f", "c"],
    ["predict", "--from", "study:c"],
    ["finetune", "--from", "study:f", "--max-epochs", "1"],
    ["lineage", "study:f"],
    ["search", "--task", "forecasting", "--data", "odd.csv", "--trials", "1"],  # a clean error
]  # fmt: skip
RUN = """
import sys
from tuner.cli import main
codes = [main(argv) for argv in {commands!r}]
print("codes", codes, file=sys.stderr)
"""


def test_commands_print_no_third_party_warning(workdir):
    (workdir / "tiny.yaml").write_text(TINY_SPACE)
    (workdir / "odd.csv").write_text("unique_id,ds,y\na,Jan 5th 2020,1\na,not a date,2\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    command = [sys.executable, "-c", RUN.format(commands=COMMANDS)]
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    lines = done.stderr.splitlines()
    assert lines[-1] == f"codes {[0] * (len(COMMANDS) - 1) + [2]}", done.stderr[-3000:]
    warned = [line for line in lines if "Warning" in line]
    assert warned == [], "\n".join(warned)
