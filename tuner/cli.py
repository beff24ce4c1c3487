"""The command line: each subcommand's flags and the one function of the Python API
(tuner/api.py) it calls. Flags are built (tuner/flags.py) from the declarations in
tuner/options.py and the tasks' specs, so the CLI and the API check the same values the
same way; what a study looks like on screen is tuner/printing.py."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tuner import options, signals
from tuner.errors import TunerError, UsageError, mask_secrets
from tuner.flags import Parser, add_flag, add_store_args, add_task_flags
from tuner.printing import print_result

Handler = Callable[[argparse.Namespace], int]
SEARCH_EPILOG = (
    "Each task has its own data flags (--data, columns, speakers...): "
    "`tuner search --task NAME --help` lists them, `tuner tasks` lists the tasks and settings."
)


def add_search_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="registered task name or dotted path")
    parser.add_argument("--space", help="search-space YAML (default: search_spaces/<task>.yaml)")
    parser.add_argument("--study", help="study name (default: <task>-<data file stem>)")
    for setting in options.SEARCH:
        add_flag(parser, setting)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fix a setting or param, e.g. --set horizon=6 (repeatable)",
    )
    _add_run_args(parser)
    parser.add_argument(
        "--verbose", action="store_true", help="a line per epoch too (when not on a terminal)"
    )


def _add_run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no per-trial lines")
    parser.add_argument(
        "--allow-changes",
        action="store_true",
        help="resume a study with other settings or data than it was run with",
    )
    add_store_args(parser, writes_models=True)


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


def add_finetune_args(parser: argparse.ArgumentParser) -> None:
    add_source_args(parser)
    for setting in options.FINETUNE:
        add_flag(parser, setting)
    parser.add_argument("--space", help="search-space YAML for --trials")
    parser.add_argument("--study", help="study name (default: <source study>-ft-<data>)")
    parser.add_argument("--model-name", help="registered model (default: <root study>-finetuned)")
    _add_run_args(parser)


def add_predict_args(parser: argparse.ArgumentParser) -> None:
    add_source_args(parser)
    parser.add_argument("--out", help="write CSV here (default: print)")
    add_store_args(parser)


def add_lineage_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "ref",
        metavar="MODEL_OR_RUN",
        help="models:/<name>/<version>, models:/<name>@<alias>, runs:/<id> or study:<name>",
    )
    add_store_args(parser)


def add_study_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--study", required=True)
    add_store_args(parser)


def add_best_args(parser: argparse.ArgumentParser) -> None:
    add_study_args(parser)
    parser.add_argument(
        "--constraint",
        metavar="COST<=N[,...]",
        help="the best trial whose model meets these (params, size_mb, latency_ms)",
    )


def add_ensemble_args(parser: argparse.ArgumentParser) -> None:
    add_study_args(parser)
    parser.add_argument("--top", type=int, help="the best K trials (default 3; 1 with --seeds)")
    parser.add_argument("--trials", metavar="N,N,...", help="these trials instead of --top")
    parser.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="fresh fits instead: the best trial's configuration (with --top K or --trials, "
        "those trials') trained again with N fresh seeds each (a study of its own, "
        "<study>-t<trials>-seeds; a larger N later trains only the new ones)",
    )
    parser.add_argument(
        "--combine", default="mean", help="mean (probabilities for classes) or median (forecasts)"
    )


def add_trials_args(parser: argparse.ArgumentParser) -> None:
    add_study_args(parser)
    parser.add_argument("--csv", action="store_true", help="print CSV instead of a table")


def add_report_args(parser: argparse.ArgumentParser) -> None:
    add_study_args(parser)
    parser.add_argument("--out", help="folder (default mlruns/reports/<study>)")


def add_compare_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("studies", nargs="+", metavar="STUDY")
    parser.add_argument("--out", default="compare.csv", help="CSV file (default compare.csv)")
    add_store_args(parser)


def add_ui_args(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, options.PORT)
    parser.add_argument("--study", help="study whose runs to link (default: the latest)")
    add_store_args(parser)


def add_proxy_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        required=True,
        help="the database the workers pass as --storage (postgresql://USER@HOST/DB)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 serves other hosts: the "
        "proxy has no TLS or login, so keep it inside the fleet's network)",
    )
    add_flag(parser, options.PROXY_PORT)


# ------------------------------------------------------------ task flags, read from argv


def _typed(args: argparse.Namespace, keys: Iterable[str]) -> dict[str, Any]:
    return {key: getattr(args, key) for key in keys if hasattr(args, key)}


# ------------------------------------------------------------ commands


def cmd_search(args: argparse.Namespace) -> int:
    from tuner import api
    from tuner.overrides import parse_overrides
    from tuner.registry import get_spec

    overrides = parse_overrides(args.set, get_spec(args.task))
    if args.max_epochs is not None:
        overrides["max_epochs"] = args.max_epochs
    keys = [s.name for s in options.SEARCH if s.name != "max_epochs"]
    result = api.search(
        args.task,
        data=_typed(args, args.data_keys),
        space=args.space,
        study=args.study,
        overrides=overrides,
        quiet=args.quiet,
        verbose=args.verbose,
        allow_changes=args.allow_changes,
        storage=args.storage,
        tracking_uri=args.tracking_uri,
        artifact_root=args.artifact_root,
        **_typed(args, keys),
    )
    print_result(result)
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from tuner import api

    result = api.finetune(
        args.source,
        task=args.task,
        data=_typed(args, args.data_keys),
        space=args.space,
        study=args.study,
        model_name=args.model_name,
        quiet=args.quiet,
        allow_changes=args.allow_changes,
        storage=args.storage,
        tracking_uri=args.tracking_uri,
        artifact_root=args.artifact_root,
        **_typed(args, [s.name for s in options.FINETUNE]),
    )
    print_result(result.search)
    after = "n/a" if result.after is None else f"{result.after:.4f}"
    print(f"{result.metric} before -> after fine-tuning: {result.before:.4f} -> {after}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tuner import api

    table = api.predict(
        args.source,
        data=_typed(args, args.data_keys),
        out=args.out,
        storage=args.storage,
        tracking_uri=args.tracking_uri,
        task=args.task,
        options=_typed(args, args.option_keys),
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

    print(format_lineage(api.lineage(args.ref, args.tracking_uri, args.storage)))
    return 0


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

    print_result(api.best(args.study, args.storage, args.tracking_uri, args.constraint))
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    from tuner import api

    result = api.ensemble(
        args.study,
        top=args.top,
        trials=args.trials,
        seeds=args.seeds,
        combine=args.combine,
        storage=args.storage,
        tracking_uri=args.tracking_uri,
    )
    from tuner.topk_ensemble import describe  # loaded by then: no torch before the checks

    print("\n".join(describe(result)))
    return 0


def cmd_trials(args: argparse.Namespace) -> int:
    from tuner import api

    table = api.trials(args.study, args.storage)
    print(table.to_csv(index=False) if args.csv else table.to_string(index=False))
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from tuner.registry import get_spec, registered

    for name in registered():
        spec = get_spec(name)
        print(
            f"{name:<14s} metric {spec.metric} ({spec.direction}); settings: "
            f"{', '.join(spec.defaults)}"
        )
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from tuner import ui

    return ui.serve(args.tracking_uri, args.port, args.study, args.storage)


def cmd_storage_proxy(args: argparse.Namespace) -> int:
    from tuner import storage_proxy, stores

    storage = stores.resolve_storage(args.storage)
    stores.read_studies(storage)  # answers, and is a storage; creates nothing
    return storage_proxy.serve(storage, args.host, args.port)


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {
    "search": ("run or resume a hyperparameter search", add_search_args, cmd_search),
    "best": ("the best trial of a study (or its Pareto front)", add_best_args, cmd_best),
    "trials": ("every trial of a study", add_trials_args, cmd_trials),
    "ensemble": ("one model averaging a study's best trials", add_ensemble_args, cmd_ensemble),
    "finetune": ("fine-tune a trained model on new data", add_finetune_args, cmd_finetune),
    "predict": ("predict with a trained model", add_predict_args, cmd_predict),
    "lineage": ("where a model came from", add_lineage_args, cmd_lineage),
    "report": ("plots and top trials of a study (HTML + PNG)", add_report_args, cmd_report),
    "compare": ("studies side by side", add_compare_args, cmd_compare),
    "tasks": ("the registered tasks", lambda parser: None, cmd_tasks),
    "ui": ("the MLflow UI on this project's store", add_ui_args, cmd_ui),
    "storage-proxy": (
        "Optuna's gRPC storage proxy in front of a database, for large fleets",
        add_proxy_args,
        cmd_storage_proxy,
    ),
}
TASK_FLAGS = ("search", "finetune", "predict")  # commands that take a task's flags


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
    argv = list(sys.argv[1:] if argv is None else argv)
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
        from tuner.recovery import environment_failure

        reason = environment_failure(exc)
        if reason is None or debug:
            raise
        return _fail(TunerError(f"{reason}; rerun the same command once this is fixed"), 1, debug)
    finally:
        signals.uninstall()


def _fail(exc: TunerError, code: int, debug: bool) -> int:
    if debug:
        raise exc
    print(f"error: {exc}", file=sys.stderr)
    return code


def _interrupted(argv: list[str]) -> str:
    if not any(word in ("search", "finetune") for word in argv):
        return "interrupted"
    running = (
        "preempted (SIGTERM): the running trial saved a checkpoint and is queued again to "
        "resume from it"
        if signals.preempted()
        else "interrupted: the running trial is recorded as interrupted (MLflow: KILLED)"
    )
    return mask_secrets(
        f"{running}; finished trials are kept; resume with: tuner {shlex.join(argv)}"
    )


if __name__ == "__main__":
    sys.exit(main())
