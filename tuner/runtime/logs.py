"""What the libraries a sweep uses may print: their banners and per-trial logs kept out of
the user's way."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator

import optuna


def quiet_libraries() -> None:
    """Keep Lightning's banners and Optuna's per-trial logs out of the user's way."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no usage reports from sweeps
    # no "View run ... at" lines on a server (and no read of the run to print them) at the
    # end of every trial's run: the sweep names the study's page itself
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for name in (
        "lightning.pytorch",
        "lightning.fabric",
        "lightning",
        "pytorch_lightning",
        "alembic",
        "psycopg",  # "error ignored terminating <Pipeline>" after the failure tuner reports
    ):
        logging.getLogger(name).setLevel(logging.ERROR)
    # MLflow logs a store's failure with a traceback before raising it; tuner reports it
    # on one line (and records it), so its log would only repeat it at length. MLflow sets
    # its loggers' level when it is imported (often after this runs: commands import it on
    # use), from MLFLOW_LOGGING_LEVEL
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "CRITICAL")
    logging.getLogger("mlflow").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


@contextlib.contextmanager
def silenced(quiet: bool) -> Iterator[None]:
    """With `quiet`, nothing a command prints reaches stdout (its header, notes, trial
    lines, a worker's lines in its own process); errors are raised, not printed."""
    if not quiet:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield
