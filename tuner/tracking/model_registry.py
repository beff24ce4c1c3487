"""A study's registered model: a version per model a trial logs (its rank as tags), and
the `best` alias, moved only to a version that ranks better."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

from tuner.config.keys import RANK_TAG, ROWS_TAG, STUDY_TAG, TIE_TAG

BEST_ALIAS = "best"


class StudyModel:
    """The registered model `name` that a study's best trials become versions of."""

    def __init__(
        self,
        client: MlflowClient,
        tracking_uri: str,
        name: str,
        study: str,
        tags: Mapping[str, str],
    ) -> None:
        self.client, self.tracking_uri, self.name = client, tracking_uri, name
        self.study, self.tags = study, dict(tags)

    def move_best_alias(self, version: str, rank: tuple[float, float], rows: str = "") -> bool:
        """Point `best` at this version unless the one it points at ranks better on the
        same rows: a host may register its trial's model after another host registered a
        better one. `rank` is (sign * value, tie score), lower is better (report.best_trial's
        rule). A holder from another study, or scored on other `rows`, does not compare by
        its tags: the caller has scored it on this version's rows (a fine-tune's bar).
        Returns whether the alias moved."""
        held = self._held_rank(rows)
        if held is not None and not rank < held:
            return False
        self.client.set_registered_model_alias(self.name, BEST_ALIAS, version)
        return True

    def _held_rank(self, rows: str) -> tuple[float, float] | None:
        try:
            current = self.client.get_model_version_by_alias(self.name, BEST_ALIAS)
        except MlflowException:  # no alias yet
            return None
        tags = current.tags
        if tags.get(STUDY_TAG) != self.study or tags.get(ROWS_TAG, "") != rows:
            return None
        try:
            return float(tags[RANK_TAG]), float(tags[TIE_TAG])
        except (KeyError, ValueError):  # an older version
            return None

    def register(
        self, run_id: str, model_id: str, number: int, rank: tuple[float, float], rows: str = ""
    ) -> str:
        """A new version of the study's model (its rank and the rows it was scored on as
        tags); returns it. A model registered before (a record written again after a crash)
        keeps the version it has."""
        for found in self.client.search_model_versions(f"run_id = '{run_id}'"):
            if found.name == self.name and found.source == f"models:/{model_id}":
                return str(found.version)
        try:
            self.client.create_registered_model(self.name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        # MLflow's SQL registry resolves a models:/ source through the global tracking URI
        # (a TODO in its sqlalchemy_store), not this client's: point it here for this call
        with _use_tracking_uri(self.tracking_uri):
            version = self.client.create_model_version(
                self.name,
                source=f"models:/{model_id}",
                run_id=run_id,
                model_id=model_id,
                tags={
                    "trial": str(number),
                    RANK_TAG: repr(rank[0]),
                    TIE_TAG: repr(rank[1]),
                    **({ROWS_TAG: rows} if rows else {}),
                    **self.tags,
                    STUDY_TAG: self.study,
                },
            )
        return str(version.version)


@dataclass(frozen=True)
class LoggedBest:
    uri: str  # models:/<model id>
    model_id: str
    version: str  # of the study's registered model


@cache
def requirements() -> list[str]:
    """What the model needs installed: this package, and the torch it was trained with
    (explicit: MLflow's inference would start a subprocess at every new best)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    try:
        own = f"lstm-tuner=={version('lstm-tuner')}"
    except PackageNotFoundError:  # run from a checkout that was not installed
        own = "lstm-tuner"
    return [own, f"torch=={torch.__version__.split('+')[0]}"]
