"""Each subcommand's own flags (the tasks' data flags are added by tuner/cli/flags.py)."""

from __future__ import annotations

import argparse

from tuner.cli.flags import add_flag, add_store_args
from tuner.config import options


def add_search_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--task",
        required=True,
        help="a registered task (`tuner tasks` lists them), or your own model: a dotted "
        "module path or a .py file (docs/custom.md)",
    )
    parser.add_argument(
        "--space",
        help="search-space YAML (default: a registered task's own, shipped as "
        "tuner/search_spaces/<task>.yaml; your model's SPACE, its .yaml, or one derived "
        "from its __init__)",
    )
    parser.add_argument(
        "--study", help="study name (default: <task>-<data file stem>; <task>-data without --data)"
    )
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


def add_export_args(parser: argparse.ArgumentParser) -> None:
    add_source_args(parser)
    parser.add_argument(
        "--format", dest="form", default="onnx", metavar="onnx|int8",
        help="onnx: float graphs ONNX Runtime runs; int8: those graphs quantised (default onnx)",
    )  # fmt: skip
    parser.add_argument(
        "--tolerance", type=float, default=0.01,
        help="refuse an export whose validation figure is worse by more than this fraction "
        "of the float model's (default 0.01: 1%%)",
    )  # fmt: skip
    parser.add_argument("--out", help="keep the export's files in this folder too")
    parser.add_argument(
        "--name", help="registered model: NAME-<format> (default: the source's model or study)"
    )
    parser.add_argument("--no-register", action="store_true", help="check and write only")
    add_store_args(parser, writes_models=True)


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
    for setting in options.ENSEMBLE:
        add_flag(parser, setting)
    parser.add_argument(
        "--combine", default="mean", help="mean (probabilities for classes) or median (forecasts)"
    )
    parser.add_argument(
        "--task", help="a study of your own model: its module, as the search took it"
    )


def add_trials_args(parser: argparse.ArgumentParser) -> None:
    add_study_args(parser)
    parser.add_argument("--csv", action="store_true", help="print CSV instead of a table")


def add_tasks_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--check",
        metavar="MODULE",
        help="your own model's module (mypkg.mytask, or a .py file): what it provides and "
        "what will not work, before any search (docs/custom.md)",
    )
    parser.add_argument("--space", help="with --check: the space to check against")


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
