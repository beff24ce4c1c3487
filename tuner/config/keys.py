"""The names under which lstm-tuner records things, in one place: Optuna trial and study
attributes, and MLflow tags. A key typed twice can drift; these cannot."""

from __future__ import annotations

from typing import Any

# ---------------------------------------------------------------- Optuna trial attributes
RUN_ID = "mlflow_run_id"  # the trial's MLflow run
FAIL_REASON = "fail_reason"  # why it failed, one line
WORKER = "worker"  # host:pid of the process that ran it
SETTINGS = "settings"  # every setting the model was built from
DEVICE = "device"
CHECKPOINT_URI = "checkpoint_uri"  # set on a trial that became the study's best: its model
MODEL_ID = "model_id"  # the MLflow logged model of that trial (models:/<id>)
MODEL_VERSION = "model_version"
NOT_PROMOTED = "not_promoted"  # the figure a kept model failed to beat: no `@best` for it
WEIGHTS_URI = "weights_uri"  # a trial in the top keep_top when it ended: its checkpoint file
BASELINE_KEYS = "baseline_keys"  # which test_* metrics are the task's baselines
STUDY_BASELINES = "study_baselines"  # a study's statistical baselines, computed once
PRUNED_AT = "pruned_at_epoch"  # the epoch (of its fold) at which a trial was pruned
PRUNED_FOLD = "pruned_at_fold"  # and the fold, when it ran K > 1
EPOCHS = "epochs"  # epochs it trained, every fold together (its curve is in MLflow)
FOLD_VALUES = "fold_values"  # each fold's best-epoch metric; the trial's value is their mean
VALUE_STD = "value_std"  # their spread
TIE_SCORE = "tie_score"  # the tie-break metric at the best epoch, lower is better
GPU_PEAK = "gpu_peak_mib"
SKIPPED = "skipped"  # asked for after the study reached its target, not run
FATAL = "fatal"  # failed for a reason no other params would fix (full disk, lost store)
WARM_START = "warm_start"  # a trial queued from an earlier study's best: "<study>#<trial>"
FIRST_OF_SPACE = "first_of_space"  # a new study's first trial, as its space's `first` names
FIT_OF = "fit_of"  # a fresh fit (`tuner ensemble --seeds`): the run of the trial it trains again
RESUMED_FROM = "resumed_from"  # a retry that continued its chain's checkpoint: where from
INFEASIBLE = "infeasible"  # a trial whose model broke a constraint, not trained: which, one line
INTERRUPTED = "interrupted"  # the fail reason of a trial stopped by Ctrl-C / SIGTERM
INTERRUPTED_BY = "interrupted_by"  # what stopped a trial whose process ended unrecorded

# ---------------------------------------------------------------- Optuna study attributes
TASK = "task"  # the registered task's name
METRIC = "metric"  # the first objective's metric
DIRECTION = "direction"
DATA = "data"  # the data options it was given (what `tuner ensemble` reads again)
SPACE = "space"  # the search space, as a dict
SAMPLER = "sampler"
PRUNER = "pruner"
SEED = "seed"  # the seed of its splits and sampler
PARENT_RUN_ID = "mlflow_parent_run_id"
WARM_STARTED_FROM = "warm_started_from"  # the studies a study was warm-started from
SETUP = "setup"  # the settings and data of its first run (tuner.study.resume)
CREATED_BY = "created_by"  # host:pid of the process that made it
MODEL_NAME = "model_name"
BEST_RULE = "best_rule"  # how its best trial (and the registry's `best` alias) is chosen
ENSEMBLES = "ensembles"  # its ensembles holding their own `@best`: {"models:/<name>@best": value}

# what an older study that lacks an attribute reads as (study_attr)
STUDY_DEFAULTS = {TASK: "", METRIC: "value", DIRECTION: "minimize", DATA: {}, SPACE: {}, SEED: 0}


def study_attr(study: Any, key: str) -> Any:
    """One of the attributes a study was recorded with (an optuna Study, FrozenStudy or
    StudySummary: all keep `user_attrs`); its default where the study lacks it."""
    value = study.user_attrs.get(key)
    return STUDY_DEFAULTS.get(key) if value is None else value


# ---------------------------------------------------------------- MLflow tags
TAG = "tuner."  # every tag of ours starts with it
ROLE_TAG = "tuner.role"  # study (the parent run) or trial
STUDY_TAG = "tuner.study"
TRIAL_TAG = "tuner.trial"
STATE_TAG = "tuner.state"
DEVICE_TAG = "tuner.device"
TASK_TAG = "tuner.task"
METRIC_TAG = "tuner.metric"
# a registered version's rank, lower is better: sign * metric value, then the tie-break
# score (report.best_trial's rule); the `best` alias compares them
RANK_TAG = "tuner.rank"
TIE_TAG = "tuner.tie_score"
SOURCE_TAG = "tuner.source"  # how a fine-tune's starting weights were named
SOURCE_SHA_TAG = "tuner.source_sha256"
SOURCE_RUN_TAG = "tuner.source_run_id"
SOURCE_STUDY_TAG = "tuner.source_study"
ROOT_STUDY_TAG = "tuner.root_study"  # the search a chain of fine-tunes started from
MEMBERS_TAG = "tuner.members"  # the trial numbers a top-k ensemble averages
MEMBER_RUNS_TAG = "tuner.member_runs"  # and their MLflow runs
ROWS_TAG = "tuner.rows"  # which validation rows a version's rank was scored on


def model_version_key(trial: int) -> str:
    """The study attribute holding the version a trial's model became: the writer process
    registers it after the trial ended, when Optuna no longer takes the trial's attributes."""
    return f"model_version_of_trial_{trial}"
