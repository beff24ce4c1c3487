"""Each subcommand's handler: its flags as the Python API's arguments, one call into
tuner/api.py (or the UI and the storage proxy), the result printed (tuner/cli/printing.py).
COMMANDS is the table the parser is built from, as Optuna's CLI keeps `_COMMANDS`."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any

from tuner.cli import arguments as a
from tuner.cli.printing import print_result
from tuner.config import options

Handler = Callable[[argparse.Namespace], int]
SEARCH_EPILOG = (
    "Each task has its own data flags (--data, columns, speakers...): "
    "`tuner search --task NAME --help` lists them, `tuner tasks` lists the tasks and settings."
)


def _typed(args: argparse.Namespace, keys: Iterable[str]) -> dict[str, Any]:
    return {key: getattr(args, key) for key in keys if hasattr(args, key)}


# ------------------------------------------------------------ commands


def cmd_search(args: argparse.Namespace) -> int:
    from tuner import api
    from tuner.config.overrides import parse_overrides
    from tuner.contract.registry import get_spec

    overrides = parse_overrides(args.set, get_spec(args.task))
    keys = [s.name for s in options.SEARCH]
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
    if result.scratch is not None:
        print(f"{result.metric} from scratch (the same architecture and epochs, fresh "
              f"weights, same rows): {result.scratch:.4f}")  # fmt: skip
    if result.held is not None:
        print(f"{result.metric} of models:/{result.search.model_name}@best before this "
              f"fine-tune, on the same rows: {result.held:.4f}")  # fmt: skip
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


def cmd_export(args: argparse.Namespace) -> int:
    from tuner import api
    from tuner.models.export import describe

    result = api.export(
        args.source, format=args.form, tolerance=args.tolerance, out=args.out, name=args.name,
        register=not args.no_register, storage=args.storage, tracking_uri=args.tracking_uri,
        task=args.task, data=_typed(args, args.data_keys) or None, quiet=False,
    )  # fmt: skip
    print("\n".join(describe(result)))
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    from tuner import api
    from tuner.models.lineage import format_lineage

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

    found = api.best(args.study, args.storage, args.tracking_uri, args.constraint)
    print_result(found, after_trials=False)
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
        task=args.task,
    )
    from tuner.models.topk import describe  # loaded by then: no torch before the checks

    print("\n".join(describe(result)))
    return 0


def cmd_trials(args: argparse.Namespace) -> int:
    from tuner import api

    table = api.trials(args.study, args.storage)
    print(table.to_csv(index=False) if args.csv else table.to_string(index=False))
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from tuner.contract.registry import get_spec, registered

    if args.check:
        return _check_task(args.check, args.space)
    for name in registered():
        spec = get_spec(name)
        print(
            f"{name:<14s} metric {spec.metric} ({spec.direction}); settings: "
            f"{', '.join(spec.defaults)}"
        )
    return 0


def _check_task(reference: str, space: str | None) -> int:
    """`tuner tasks --check REF`: one line per finding; exit 2 where a search is refused."""
    from tuner import api

    findings = api.check(reference, space)
    for finding in findings:
        mark = f"refuses {finding.refuses}" if finding.refuses else "ok"
        print(f"{mark:<32s} {finding.topic:<16s} {finding.text}")
    blocked = any(finding.refuses == "search" for finding in findings)
    print("a search would be refused (above)" if blocked else "ready to search")
    return 2 if blocked else 0


def cmd_ui(args: argparse.Namespace) -> int:
    from tuner.cli import ui

    return ui.serve(args.tracking_uri, args.port, args.study, args.storage)


def cmd_storage_proxy(args: argparse.Namespace) -> int:
    from tuner.storage import proxy as storage_proxy
    from tuner.storage.locations import resolve_storage
    from tuner.storage.studies import read_studies

    storage = resolve_storage(args.storage)
    read_studies(storage)  # answers, and is a storage; creates nothing
    return storage_proxy.serve(storage, args.host, args.port)


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {
    "search": ("run or resume a hyperparameter search", a.add_search_args, cmd_search),
    "best": ("the best trial of a study (or its Pareto front)", a.add_best_args, cmd_best),
    "trials": ("every trial of a study", a.add_trials_args, cmd_trials),
    "ensemble": ("one model averaging a study's best trials", a.add_ensemble_args, cmd_ensemble),
    "finetune": ("fine-tune a trained model on new data", a.add_finetune_args, cmd_finetune),
    "predict": ("predict with a trained model", a.add_predict_args, cmd_predict),
    "export": (
        "a trained model as ONNX or int8, checked and registered",
        a.add_export_args,
        cmd_export,
    ),  # fmt: skip
    "lineage": ("where a model came from", a.add_lineage_args, cmd_lineage),
    "report": ("plots and top trials of a study (HTML + PNG)", a.add_report_args, cmd_report),
    "compare": ("studies side by side", a.add_compare_args, cmd_compare),
    "tasks": ("the registered tasks; --check your own model", a.add_tasks_args, cmd_tasks),
    "ui": ("the MLflow UI on this project's store", a.add_ui_args, cmd_ui),
    "storage-proxy": (
        "Optuna's gRPC storage proxy in front of a database, for large fleets",
        a.add_proxy_args,
        cmd_storage_proxy,
    ),
}
