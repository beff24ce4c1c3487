"""What a sequence classifier must beat: a 1-nearest-neighbour on the raw values
(Euclidean, each sequence resampled to one length) on the same validation and test parts as
the model, from the same training part (cheap: the resampled values are computed once per
data set); and, once per study, extremely randomised trees on summary statistics of each
channel, fitted on every non-test sequence.

Why scikit-learn on summary statistics, not MiniRocket: aeon's and sktime's MiniRocket
compile with numba on a fresh process's first call (tens of seconds, every study, before
the first trial), while 200 trees on ~12 statistics per channel fit in well under a second
on thousands of sequences and import in about one. Text sequences (token ids) get neither:
their distances and statistics mean nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tuner.tasks.classification.data import SequenceSet, assign_splits

RESAMPLED_STEPS = 128  # 1-NN: every sequence interpolated to at most this many steps
TREES = 200


def nearest_neighbour_baseline(data: SequenceSet, split: np.ndarray) -> dict[str, float]:
    """1-NN accuracy on the validation and test parts, from the training part."""
    if data.text or data.labels is None:
        return {}
    raw, labels = _resampled(data), np.asarray(data.labels)
    train = split == "train"
    metrics = {}
    for stage in ("val", "test"):
        part = split == stage
        if part.any() and train.any():
            predicted = nearest_neighbour(raw[train], labels[train], raw[part])
            metrics[f"{stage}_1nn_acc"] = _accuracy(predicted, labels[part])
    return metrics


def statistical_baselines(data: SequenceSet, settings: Mapping[str, Any]) -> dict[str, float]:
    """Test accuracy of the trees, trained on every non-test sequence."""
    if data.text or data.labels is None:
        return {}
    test = assign_splits(data, settings) == "test"
    if not test.any():
        return {}
    labels = np.asarray(data.labels)
    stats = np.stack([summary_statistics(s) for s in data.sequences])
    return {"test_trees_acc": _accuracy(trees(stats[~test], labels[~test], stats[test]),
                                        labels[test])}  # fmt: skip


_RESAMPLED: dict[int, tuple[SequenceSet, np.ndarray]] = {}  # id -> (the set, its values)


def _resampled(data: SequenceSet) -> np.ndarray:
    """Every sequence resampled to one length and flattened, once per data set (the set is
    held with its values, so its id is not reused while cached)."""
    if id(data) not in _RESAMPLED:
        _RESAMPLED.clear()  # a process serves one study's data at a time
        steps = min(RESAMPLED_STEPS, int(np.median([len(s) for s in data.sequences])))
        values = np.stack([resampled(s, steps).ravel() for s in data.sequences])
        _RESAMPLED[id(data)] = (data, values)
    return _RESAMPLED[id(data)][1]


def resampled(sequence: np.ndarray, steps: int) -> np.ndarray:
    """A (T, F) sequence linearly interpolated to (steps, F)."""
    old = np.linspace(0.0, 1.0, len(sequence))
    new = np.linspace(0.0, 1.0, steps)
    return np.stack([np.interp(new, old, column) for column in sequence.T], axis=1)


def summary_statistics(sequence: np.ndarray) -> np.ndarray:
    """Per channel: level, spread, range, quartiles, ends, slope, roughness, where the peak
    lies; and the length."""
    values = np.asarray(sequence, dtype=float)
    t = np.linspace(0.0, 1.0, len(values))
    centred = t - t.mean()
    slope = (centred[:, None] * (values - values.mean(0))).sum(0) / max((centred**2).sum(), 1e-12)
    roughness = (
        np.abs(np.diff(values, axis=0)).mean(0) if len(values) > 1 else np.zeros(values.shape[1])
    )
    parts = [
        values.mean(0), values.std(0), values.min(0), values.max(0),
        *np.percentile(values, [25, 50, 75], axis=0), values[0], values[-1], slope, roughness,
        values.argmax(0) / max(len(values) - 1, 1),
    ]  # fmt: skip
    return np.concatenate([*parts, [len(values)]])


def nearest_neighbour(train: np.ndarray, labels: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Each test row's label: the training row nearest in Euclidean distance."""
    squared = (test**2).sum(1)[:, None] - 2 * test @ train.T + (train**2).sum(1)[None, :]
    return labels[squared.argmin(1)]


def trees(train: np.ndarray, labels: np.ndarray, test: np.ndarray) -> np.ndarray:
    from sklearn.ensemble import ExtraTreesClassifier

    model = ExtraTreesClassifier(n_estimators=TREES, random_state=0, n_jobs=1)
    return model.fit(train, labels).predict(test)


def _accuracy(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float((predicted == actual).mean())
