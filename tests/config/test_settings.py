"""The one declaration of settings and flags: types, ranges, choices, and no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO
from tuner.config.settings import Setting, TaskSpec
from tuner.errors import UsageError
from tuner.tasks import TASKS, get_spec, get_task


@pytest.mark.parametrize(
    "setting, good, bad",
    [
        (Setting("n", 3, low=1), [1, 7], [0, -1, 2.5, True, "3", None, float("nan")]),
        (Setting("lr", 0.1, low=0, above=True), [1, 1e-9, 0.5], [0, -1.0, float("inf"), "x"]),
        (Setting("p", 0.0, low=0, high=1), [0, 1, 0.5], [1.01, -0.01]),
        (Setting("flag", False), [True, False], [1, "true", None]),
        (Setting("word", "a", choices=("a", "b")), ["b"], ["c", 1, None]),
        (Setting("t", None, kind=float, low=0, above=True), [None, 2.0], [0, -5]),
    ],
)
def test_a_setting_takes_its_type_range_and_choices_only(setting, good, bad):
    assert [setting.problem(v) for v in good] == [None] * len(good)
    assert all(setting.problem(v) == f"expected {setting.expected()}" for v in bad)


def test_command_line_values_are_read_and_refused_with_the_flag():
    trials = Setting("trials", 20, low=1)
    assert trials.parse("5") == 5
    with pytest.raises(UsageError, match=r"^--trials 0: expected an integer >= 1$"):
        trials.parse("0")
    assert Setting("lr", 0.1, low=0, above=True).parse("1e-3") == 0.001  # YAML 1.1 reads a str


def test_every_task_declares_its_settings_metrics_and_model_arguments():
    for name in TASKS:
        spec, task = get_spec(name), get_task(name)
        assert spec is task.spec and task.defaults == spec.defaults
        assert spec.metric in spec.metrics and spec.direction_of(spec.metric) == spec.direction
        assert {"max_epochs", "patience", "grad_clip"} <= set(spec.table)
        assert {"hidden_size", "num_layers", "lr"} <= set(spec.model_args(spec.defaults))
        for setting in spec.table.values():
            assert setting.problem(setting.default) is None, (name, setting.name)


def test_tasks_written_before_the_declaration_still_load():
    old = TaskSpec.from_defaults("old", "val_loss", "minimize", {"max_epochs": 9, "width": 4})
    assert old.defaults["max_epochs"] == 9 and old.check("width", 5) is None
    assert old.check("width", "wide").startswith("width: expected an integer")
    assert old.check("max_epochs", 0).startswith("max_epochs: expected an integer >= 1")
    assert old.metrics is None  # any metric: the task did not say which it logs


def test_the_declarations_do_not_import_torch():
    code = (
        "import sys, tuner.tasks as tasks, tuner.config.settings, tuner.config.options\n"
        "import tuner.config.names, tuner.errors\n"
        "[tasks.get_spec(name) for name in tasks.TASKS]\n"
        "print(sorted(m for m in ('torch', 'lightning', 'mlflow') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
