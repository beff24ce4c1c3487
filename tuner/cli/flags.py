"""Command-line flags built from declarations: a Setting becomes a flag whose type and range
are checked as it is read; a task's data flags and predict options come from the task;
argparse's own mistakes are one `error:` line like every other."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tuner.config import options
from tuner.config.settings import Setting
from tuner.errors import UsageError

DATA_HELP = "the input, as the model's task reads it (default: the data it was trained on)"


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one `error:` line (exit 2), like every other mistake."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def add_flag(parser: Any, setting: Setting, suppress: bool = False) -> None:
    """A flag from its declaration: its type and range are checked as it is read."""
    flag = "--" + setting.name.replace("_", "-")
    default = argparse.SUPPRESS if suppress else setting.default
    if setting.type is bool:
        parser.add_argument(flag, action="store_true", default=default, help=setting.help)
        return
    shown = [] if setting.type is str and not setting.choices else [setting.expected()]
    shown += [] if setting.default is None else [f"default {setting.default}"]
    parser.add_argument(
        flag,
        type=setting.parse,
        default=default,
        metavar=setting.name.upper(),
        help=f"{setting.help} ({'; '.join(shown)})" if shown else setting.help,
    )


def add_store_args(parser: argparse.ArgumentParser, writes_models: bool = False) -> None:
    add_flag(parser, options.STORAGE)
    add_flag(parser, options.TRACKING_URI)
    if writes_models:
        add_flag(parser, options.ARTIFACT_ROOT)


def add_task_flags(parser: argparse.ArgumentParser, command: str, argv: Sequence[str]) -> None:
    """Data flags (and predict options) belong to a task. `search` takes those of its
    --task; `predict` and `finetune` learn the task from the model, so they take those of
    --task when given, else of every registered task, and pass on only what was typed."""
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--task")
    task, _ = peek.parse_known_args(argv)
    from tuner.contract.registry import get_spec, get_task, registered

    names = [task.task] if task.task else ([] if command == "search" else list(registered()))
    if command == "search":
        before = {action.dest for action in parser._actions}
        for name in names:
            get_task(name).add_data_args(parser)
        dests = [action.dest for action in parser._actions if action.dest not in before]
    else:
        dests = _copy_flags(parser, [get_task(name).add_data_args for name in names])
    parser.set_defaults(data_keys=dests)
    if command == "predict":
        group = parser.add_argument_group("model options (used by the tasks that take them)")
        seen: set[str] = set()
        for name in names:
            for setting in get_spec(name).predict_options:
                if setting.name not in seen:
                    seen.add(setting.name)
                    add_flag(group, setting, suppress=True)
        parser.set_defaults(option_keys=sorted(seen))


def _copy_flags(
    parser: argparse.ArgumentParser, adders: Iterable[Callable[[argparse.ArgumentParser], None]]
) -> list[str]:
    """Each task's data flags once (tasks share --data), in one group; a flag that was not
    typed is left out of the arguments instead of taking a default."""
    before = {action.dest for action in parser._actions}
    group = parser.add_argument_group("data (the flags of the model's task)")
    dests: list[str] = []
    for add in adders:
        scratch = argparse.ArgumentParser(add_help=False)
        add(scratch)
        for action in scratch._actions:
            if action.dest in before or action.dest in dests:
                continue
            dests.append(action.dest)
            group.add_argument(
                *action.option_strings,
                dest=action.dest,
                type=action.type,
                metavar=action.metavar,
                help=DATA_HELP if action.dest == "data" else action.help,
                default=argparse.SUPPRESS,
            )
    return dests
