"""The options of every command, declared once: the CLI builds its flags from these and the
Python API checks its keyword arguments against them, so both refuse the same values
with the same message before anything is created."""

from __future__ import annotations

from tuner.config.settings import Setting

SAMPLERS = ("tpe", "random", "cmaes", "gp")
PRUNERS = ("median", "hyperband", "none")
MEDIAN_STARTUP = 3  # complete trials the median pruner waits for before it prunes
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed")
MAX_SEED = 2**32 - 1  # numpy and Lightning take seeds in [0, 2**32)
MOST = 1_000_000  # trials or epochs: more is a typo, and it would run for ever
MOST_SEEDS = 50  # fresh fits in all: each keeps its weights, a bound on what a study stores

SEED = Setting("seed", 0, "random seed of the sampler and of training", low=0, high=MAX_SEED)

WARM_START = Setting(
    "warm_start",
    None,
    "STUDY[,STUDY...]: first run the best configurations of earlier studies of the task",
    kind=str,
    optional=True,
)
WARM_START_TOP = Setting(
    "warm_start_top", 3, "configurations --warm-start takes from each study", low=1, high=1000
)

SEARCH: tuple[Setting, ...] = (
    Setting("trials", 20, "total finished trials the study should hold", low=1, high=MOST),
    Setting(
        "timeout", None, "stop starting trials after S seconds", kind=float, low=0, above=True
    ),
    Setting("sampler", "tpe", "Optuna sampler", choices=SAMPLERS),
    Setting("pruner", "median", "Optuna pruner", choices=PRUNERS),
    Setting("max_epochs", None, "shortcut for --set max_epochs=E", kind=int, low=1),
    SEED,
    Setting("devices", "auto", "auto | cpu | gpu | GPU indices like 0,1,2 (one per worker)"),
    Setting("workers", 1, "worker processes on this host sharing the study", low=1),
    Setting("precision", "32-true", "mixed precision: 16-mixed needs a GPU", choices=PRECISIONS),
    Setting("trials_per_device", 1, "workers that share one GPU (small trials)", low=1, high=64),
    Setting(
        "heartbeat",
        30,
        "seconds between a running trial's heartbeats; one silent for 4x this is failed "
        "and retried (its worker died)",
        low=1,
        high=3600,
    ),
    Setting(
        "max_retries",
        10,
        "times a trial whose worker died or was preempted is run again (each retry resumes "
        "from its last checkpoint)",
        low=0,
        high=1000,
    ),
    Setting(
        "storage_proxy",
        None,
        "grpc://HOST:PORT of a `tuner storage-proxy`: trials reach --storage through it "
        "(only heartbeats go to the database directly)",
        kind=str,
        optional=True,
    ),
    WARM_START,
    WARM_START_TOP,
    Setting(
        "constraint",
        None,
        "COST<=N[,...] on params, size_mb or latency_ms (or latency_ms_onnx, "
        "latency_ms_int8, size_mb_onnx, size_mb_int8: docs/export.md): a model that "
        "breaks one is not trained, and is never the best",
        kind=str,
        optional=True,
    ),
)

FINETUNE: tuple[Setting, ...] = (
    Setting(
        "lr", None, "default: a tenth of the source trial's lr", kind=float, low=0, above=True
    ),
    Setting("max_epochs", None, "default: the source's max_epochs", kind=int, low=1),
    Setting("freeze_layers", None, "freeze the first K LSTM layers", kind=int, low=0),
    Setting("patience", 5, "early stopping on the validation metric (0 = off)", low=0),
    Setting("trials", None, "tune the fine-tuning with N trials", kind=int, low=1),
    SEED,
    WARM_START,  # with --trials: earlier fine-tune studies of the same source model
    WARM_START_TOP,
)

STORAGE = Setting(
    "storage",
    None,
    "Optuna storage URL (default sqlite:///mlruns/optuna.db)",
    kind=str,
    optional=True,
)
TRACKING_URI = Setting(
    "tracking_uri",
    None,
    "MLflow tracking URI (default: MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db)",
    kind=str,
    optional=True,
)
ARTIFACT_ROOT = Setting(
    "artifact_root",
    None,
    "where new experiments keep models: s3://..., or a folder every host mounts (needed "
    "with a postgresql:// or mysql:// --tracking-uri; default mlruns/artifacts)",
    kind=str,
    optional=True,
)
STORES: tuple[Setting, ...] = (STORAGE, TRACKING_URI, ARTIFACT_ROOT)
STUDY = Setting("study", "", "the study's name", kind=str)
OUT = Setting("out", None, "where to write", kind=str, optional=True)

ENSEMBLE: tuple[Setting, ...] = (
    Setting(
        "top",
        None,
        "the best K trials (default 3; 1 with --seeds)",
        kind=int,
        low=1,
        optional=True,
    ),  # fmt: skip
    Setting("trials", None, "N,N,...: these trials instead of --top", kind=str, optional=True),
    Setting(
        "seeds",
        None,
        "fresh fits instead: the best trial's configuration (with --top K or --trials, those "
        "trials') trained again with N fresh seeds each (a study of its own, "
        "<study>-t<trials>-seeds; a larger N later trains only the new ones)",
        kind=int,
        low=1,
        high=MOST_SEEDS,
        optional=True,
    ),
)

PORT = Setting("port", 5000, "port of the MLflow UI on 127.0.0.1", low=1, high=65535)
PROXY_PORT = Setting("port", 13000, "port the storage proxy listens on", low=1, high=65535)
