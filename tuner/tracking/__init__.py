"""Everything MLflow, and nothing else imports mlflow: the record of a running study
(study_runs.StudyTracker) and the reading of a tracking store (store.TrackingStore)."""

from tuner.tracking.model_registry import BEST_ALIAS
from tuner.tracking.store import CHECKPOINT_DIR, SHARED_VIEW_TAG, VIEW_KEY, TrackingStore
from tuner.tracking.study_runs import RUN_STATUS, StudyTracker

__all__ = [
    "BEST_ALIAS",
    "CHECKPOINT_DIR",
    "RUN_STATUS",
    "SHARED_VIEW_TAG",
    "VIEW_KEY",
    "StudyTracker",
    "TrackingStore",
]
