"""Command line: argument parsing only; each subcommand calls one function."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from tuner.errors import TunerError, UsageError

Handler = Callable[[argparse.Namespace], int]
PREDICT_OPTIONS = ("proba", "prompt", "length", "temperature", "seed")


def add_search_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="registered task name or dotted path")
    parser.add_argument("--space", help="search-space YAML (default: search_spaces/<task>.yaml)")
    parser.add_argument(
        "--trials",
        type=int,
        default=20,
        help="total finished trials the study should hold (default 20)",
    )
    parser.add_argument("--timeout", type=float, help="stop starting trials after S seconds")
    parser.add_argument("--study", help="study name (default: <task>-<data file stem>)")
    parser.add_argument("--sampler", default="tpe", help="tpe | random | cmaes | gp")
    parser.add_argument("--pruner", default="hyperband", help="hyperband | median | none")
    parser.add_argument("--max-epochs", type=int, help="shortcut for --set max_epochs=E")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fix a setting or param, e.g. --set horizon=6 (repeatable)",
    )
    parser.add_argument(
        "--devices",
        default="auto",
        help="auto | cpu | gpu | GPU indices like 0,1,2 (one per worker)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes on this host sharing the study"
    )
    parser.add_argument(
        "--precision",
        default="32-true",
        help="32-true | 16-mixed (GPU) | bf16-mixed: mixed precision training",
    )
    parser.add_argument(
        "--trials-per-device",
        type=int,
        default=1,
        help="workers that share one GPU (small trials)",
    )
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=30,
        help="seconds between a running trial's heartbeats; one silent for "
        "4x this is failed and retried (its worker died)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-trial lines")
    parser.add_argument(
        "--verbose", action="store_true", help="a line per epoch too (when not on a terminal)"
    )
    _add_store_args(parser)


def _add_store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage", help="Optuna storage URL (default sqlite:///mlruns/optuna.db)"
    )
    parser.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db)",
    )


def add_study_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--study", required=True)
    parser.add_argument(
        "--storage", help="Optuna storage URL (default sqlite:///mlruns/optuna.db)"
    )


def cmd_search(args: argparse.Namespace) -> int:
    from tuner import api

    result = api.search(**api.search_kwargs(args))
    api.print_result(result)
    return 0


def add_source_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="SRC",
        help="checkpoint file, runs:/<id>, models:/<name>/<version>, "
        "models:/<name>@<alias> or study:<name>",
    )
    parser.add_argument("--task", help="refuse a checkpoint of any other task")
    parser.add_argument("--data", help="input file (default: the data the model was trained on)")
    parser.add_argument(
        "--data-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a task data option, e.g. --data-arg target=sales",
    )
    _add_store_args(parser)


def add_finetune_args(parser: argparse.ArgumentParser) -> None:
    add_source_args(parser)
    parser.add_argument("--lr", type=float, help="default: a tenth of the source trial's lr")
    parser.add_argument("--max-epochs", type=int, help="default: the source's max_epochs")
    parser.add_argument("--freeze-layers", type=int, help="freeze the first K LSTM layers")
    parser.add_argument(
        "--patience", type=int, default=5, help="early stopping on the validation metric (0 = off)"
    )
    parser.add_argument("--trials", type=int, help="tune the fine-tuning with N trials")
    parser.add_argument("--space", help="search-space YAML for --trials")
    parser.add_argument("--study", help="study name (default: <source study>-ft-<data>)")
    parser.add_argument("--model-name", help="registered model (default: <root study>-finetuned)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")


def add_predict_args(parser: argparse.ArgumentParser) -> None:
    add_source_args(parser)
    parser.add_argument("--out", help="write CSV here (default: print)")
    group = parser.add_argument_group("task options (used by the tasks that know them)")
    group.add_argument("--proba", action="store_true", help="classification: every class")
    group.add_argument("--prompt", help="charlm: text to continue")
    group.add_argument("--length", type=int, default=300, help="charlm: characters to generate")
    group.add_argument("--temperature", type=float, default=1.0, help="charlm: sampling")
    group.add_argument("--seed", type=int, default=0, help="charlm: sampling seed")


def add_lineage_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "ref",
        metavar="MODEL_OR_RUN",
        help="models:/<name>/<version>, models:/<name>@<alias>, runs:/<id>",
    )
    parser.add_argument("--tracking-uri")


def cmd_finetune(args: argparse.Namespace) -> int:
    from tuner import api

    api.print_finetune(api.finetune(**api.finetune_kwargs(args)))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tuner import api

    table = api.predict(
        args.source,
        data=api.data_kwargs(args),
        out=args.out,
        storage=args.storage,
        tracking_uri=args.tracking_uri,
        task=args.task,
        options={key: getattr(args, key) for key in PREDICT_OPTIONS},
    )
    if args.out:
        print(f"wrote {len(table)} rows to {args.out}")
    elif list(table.columns) == ["text"]:  # generated text reads best as it is
        print("\n".join(table["text"]))
    else:
        print(table.to_string(index=False))
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    from tuner import api
    from tuner.provenance import format_lineage

    print(format_lineage(api.lineage(args.ref, args.tracking_uri)))
    return 0


def add_report_args(parser: argparse.ArgumentParser) -> None:
    add_study_args(parser)
    parser.add_argument("--out", help="folder (default mlruns/reports/<study>)")
    parser.add_argument("--tracking-uri")


def add_compare_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("studies", nargs="+", metavar="STUDY")
    parser.add_argument("--out", default="compare.csv", help="CSV file (default compare.csv)")
    parser.add_argument(
        "--storage", help="Optuna storage URL (default sqlite:///mlruns/optuna.db)"
    )


def cmd_report(args: argparse.Namespace) -> int:
    from tuner import api

    page = api.report(args.study, args.out, args.storage, args.tracking_uri)
    print(f"report: {page} (also on the study's MLflow parent run, under report/)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from tuner import api

    table = api.compare(args.studies, args.out, args.storage)
    print(table.to_string(index=False))
    print(f"written to {args.out}")
    return 0


def cmd_best(args: argparse.Namespace) -> int:
    from tuner import api

    api.print_result(api.best(args.study, args.storage))
    return 0


def cmd_trials(args: argparse.Namespace) -> int:
    from tuner import api

    table = api.trials(args.study, args.storage)
    print(table.to_csv(index=False) if args.csv else table.to_string(index=False))
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from tasks import TASKS, get_task

    for name in TASKS:
        task = get_task(name)
        print(
            f"{name:<14s} metric {task.metric} ({task.direction}); settings: "
            f"{', '.join(task.defaults)}"
        )
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from tuner import ui

    return ui.serve(args.tracking_uri, args.port, args.study)


def _add_trials_args(parser: argparse.ArgumentParser) -> None:
    add_study_args(parser)
    parser.add_argument("--csv", action="store_true", help="print CSV instead of a table")


def _add_ui_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--study", help="study whose runs to link (default: the latest)")
    parser.add_argument("--tracking-uri")


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {
    "search": ("run or resume a hyperparameter search", add_search_args, cmd_search),
    "best": ("the best trial of a study", add_study_args, cmd_best),
    "trials": ("every trial of a study", _add_trials_args, cmd_trials),
    "finetune": ("fine-tune a trained model on new data", add_finetune_args, cmd_finetune),
    "predict": ("predict with a trained model", add_predict_args, cmd_predict),
    "lineage": ("where a model came from", add_lineage_args, cmd_lineage),
    "report": ("plots and top trials of a study (HTML + PNG)", add_report_args, cmd_report),
    "compare": ("studies side by side", add_compare_args, cmd_compare),
    "tasks": ("the registered tasks", lambda parser: None, cmd_tasks),
    "ui": ("the MLflow UI on this project's store", _add_ui_args, cmd_ui),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tuner", description="Tune and fine-tune LSTM models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_args, handler) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        add_args(command)
        command.set_defaults(handler=handler)
        if name == "search":
            _add_task_data_args(command, argv)
    return parser


def _add_task_data_args(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """The data flags depend on --task, so it is read first."""
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--task")
    known, _ = peek.parse_known_args(argv)
    if known.task:
        from tasks import get_task

        before = {action.dest for action in parser._actions}
        get_task(known.task).add_data_args(parser)
        added = [action.dest for action in parser._actions if action.dest not in before]
        parser.set_defaults(data_keys=added)


def _interrupt_on_sigterm() -> None:
    """SIGTERM (a scheduler, `kill`) takes the same clean path as Ctrl-C."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    _interrupt_on_sigterm()
    try:
        args = build_parser(argv).parse_args(argv)
        return args.handler(args)
    except UsageError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TunerError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        command = " ".join(["tuner", *argv])
        print(
            f"\ninterrupted: the running trial is recorded as failed (MLflow: KILLED) and "
            f"finished trials are kept; resume with: {command}",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
