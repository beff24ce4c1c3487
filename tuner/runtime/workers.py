"""Several worker processes on this host sharing one study (`tuner search --workers N`).

Optuna's storage is the only coordinator: each worker runs the same search loop against it
(as a second host would), with its own device or share of CPU cores. The launching process
opens the study and its parent run first (so workers never race to create them), waits,
and closes the parent run when all workers are done.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from tuner import redact
from tuner.contract.datafiles import DataFile
from tuner.errors import TunerError, UsageError
from tuner.runtime import signals
from tuner.runtime.devices import WorkerPlan, plan_workers


def run_workers(
    config: Any,
    run: Callable[[Any], Any],
    open_record: Callable[[], tuple[Any, Any]],
    close_record: Callable[[Any, Any, str], Any],
) -> int:
    """Start one process per worker plan, each calling `run` (a module-level function, so
    the spawned process can import it) with its own config; returns how many failed."""
    plans = plan_workers(config.workers, config.devices, config.trials_per_device)
    study, tracker = open_record()
    print(
        f"{len(plans)} workers: "
        + ", ".join(
            f"w{p.index}={'cuda ' + p.gpu if p.gpu is not None else 'cpu'}/{p.threads} threads"
            for p in plans
        )
    )
    context = multiprocessing.get_context("spawn")  # no forked torch / sqlite state
    processes = [
        context.Process(target=_worker_main, args=(config, plan, run), daemon=False)
        for plan in plans
    ]
    status = "FINISHED"
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        status = "KILLED"
        _stop(processes)
        raise
    finally:
        close_record(study, tracker, status)
    return sum(process.exitcode != 0 for process in processes)


def _stop(processes: list[multiprocessing.process.BaseProcess]) -> None:
    """Pass Ctrl-C on (a terminal already sent it to the whole group) and wait for each
    worker to record its running trial; kill only what does not stop in time."""
    for process in processes:
        if process.is_alive():
            os.kill(process.pid, signal.SIGINT)
    for process in processes:
        process.join(timeout=60)
        if process.is_alive():
            process.kill()


def _worker_main(config: Any, plan: WorkerPlan, run: Callable[[Any], Any]) -> None:
    # the launcher stops workers with SIGINT; one started with SIGINT ignored (nohup, a
    # script's `cmd &`) would hand that on, and its workers would die at the 60 s kill
    # without recording their trials. A second stop (the terminal's, then the launcher's)
    # must not cut short the recording of the first.
    signals.install(second_exits=False)
    os.environ.update(plan.environment())
    redact.remember_inputs([v for v in vars(config).values() if isinstance(v, str)], os.environ)
    with redact.hidden_output():
        _work(config, plan, run)


def _work(config: Any, plan: WorkerPlan, run: Callable[[Any], Any]) -> None:
    import torch

    torch.set_num_threads(plan.threads)
    data = dict(config.data)
    if isinstance(data.get("data"), DataFile):
        data["data"] = data["data"].load()
    worker = dataclasses.replace(
        config, data=data, workers=1, devices=plan.accelerator, worker_index=plan.index
    )
    try:
        run(worker)
    except KeyboardInterrupt:
        sys.exit(130)
    except UsageError as exc:
        print(f"w{plan.index}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except TunerError as exc:
        print(f"w{plan.index}: error: {exc}", file=sys.stderr)
        sys.exit(1)
