"""The command line's entry point: the parser built from the command table
(tuner/cli/commands.py), one line and an exit code for every error (2: the input, 1: the
run), Ctrl-C and a closed pipe. Flags are built (tuner/cli/flags.py) from the declarations in
tuner/config/options.py and the tasks' specs, so the CLI and the API check the same values the
same way; what a study looks like on screen is tuner/cli/printing.py."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence

from tuner import redact
from tuner.cli.commands import COMMANDS, SEARCH_EPILOG
from tuner.cli.flags import Parser, add_task_flags
from tuner.errors import TunerError, UsageError, mask_secrets
from tuner.runtime import signals
from tuner.runtime.scratch import remove_scratch_folders

TASK_FLAGS = ("search", "finetune", "predict", "export")  # commands that take a task's flags


def build_parser(argv: Sequence[str]) -> Parser:
    parser = Parser(prog="tuner", description="Tune and fine-tune LSTM models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((word for word in argv if word in COMMANDS), None)
    for name, (help_text, add_args, handler) in COMMANDS.items():
        epilog = SEARCH_EPILOG if name == "search" else None
        command = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog)
        add_args(command)
        command.set_defaults(handler=handler)
        if name == chosen and name in TASK_FLAGS:
            add_task_flags(command, name, argv)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every URL it was given is remembered first, and nothing it prints
    (its own lines, a library's log, a traceback under --debug) shows that URL's secrets."""
    argv = list(sys.argv[1:] if argv is None else argv)
    redact.remember_inputs(argv, os.environ)
    with redact.hidden_output():
        return _run(argv)


def _run(argv: list[str]) -> int:
    debug = "--debug" in argv
    signals.install()
    try:
        args = build_parser(argv).parse_args(argv)
        return args.handler(args)
    except UsageError as exc:
        return _fail(exc, 2, debug)
    except TunerError as exc:
        return _fail(exc, 1, debug)
    except KeyboardInterrupt:
        print(f"\n{_interrupted(argv)}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tuner ... | head` closed the pipe: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a full disk or a store that failed, wherever it happened
        from tuner.runtime.recovery import environment_failure

        reason = environment_failure(exc)
        if reason is None or debug:
            raise
        return _fail(TunerError(f"{reason}; rerun the same command once this is fixed"), 1, debug)
    finally:
        signals.uninstall()
        remove_scratch_folders()  # downloaded models: nothing stays in the temp folder


MAX_ERROR_LINES, MAX_LINE = 20, 600  # an error quoting a huge value stays readable


def _fail(exc: TunerError, code: int, debug: bool) -> int:
    if debug:
        raise exc
    print(f"error: {_bounded(str(exc))}", file=sys.stderr)
    return code


def _bounded(message: str) -> str:
    """At most MAX_ERROR_LINES lines of at most MAX_LINE characters each."""
    lines = message.splitlines() or [""]
    cut = [line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..." for line in lines]
    more = len(cut) - MAX_ERROR_LINES
    return "\n".join(cut[:MAX_ERROR_LINES] + ([f"... and {more} more lines"] if more > 0 else []))


def _interrupted(argv: list[str]) -> str:
    if not any(word in ("search", "finetune") for word in argv):
        return "interrupted"
    running = (
        "preempted (SIGTERM): each running trial saved a checkpoint and is queued again "
        "to resume from it"
        if signals.preempted()
        else "interrupted: each running trial is recorded as interrupted (MLflow: KILLED)"
    )
    return mask_secrets(
        f"{running}; finished trials are kept; resume with: tuner {shlex.join(argv)}"
    )
