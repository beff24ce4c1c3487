"""What a recogniser must beat: the most frequent training transcript said for every
utterance (character and word error rates on the same validation and test parts, in the
data module), and, once per study for clips of one word each, a logistic regression on each
clip's log-mel bands (mean and spread over time) trained on every non-test clip, scored on
the test part as a CER like the model's and as an accuracy."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from tuner.tasks.speech.data import UtteranceSet, assign_splits
from tuner.tasks.speech.text import ErrorRates


def frequent_transcript_baseline(transcripts: list[str], split: np.ndarray) -> dict[str, float]:
    """CER and WER of saying the most frequent training transcript every time."""
    train = [t for t, part in zip(transcripts, split, strict=True) if part == "train"]
    if not train:
        return {}
    guess = Counter(train).most_common(1)[0][0]
    metrics = {}
    for stage in ("val", "test"):
        references = [t for t, part in zip(transcripts, split, strict=True) if part == stage]
        if references:
            rates = ErrorRates()
            rates.add(references, [guess] * len(references))
            metrics[f"{stage}_frequent_cer"] = rates.cer()
            metrics[f"{stage}_frequent_wer"] = rates.wer()
    return metrics


def statistical_baselines(data: UtteranceSet, settings: Mapping[str, Any]) -> dict[str, float]:
    """Test CER and accuracy of a logistic regression on log-mel statistics, where every
    clip says one word (a classifier's job); nothing for longer transcripts."""
    transcripts = data.transcripts or []
    if not transcripts or any(len(t.split()) != 1 for t in transcripts):
        return {}
    test = assign_splits(data, settings) == "test"
    labels = np.asarray(transcripts)
    if not test.any() or len(set(labels[~test])) < 2:  # nothing to score, or one word to say
        return {}
    features = np.stack([_statistics(f) for f in data.features(settings)])
    predicted = _logistic(features[~test], labels[~test], features[test])
    rates = ErrorRates()
    rates.add(list(labels[test]), list(predicted))
    return {"test_logreg_cer": rates.cer(),
            "test_logreg_acc": float((predicted == labels[test]).mean())}  # fmt: skip


def _statistics(frames: torch.Tensor) -> np.ndarray:
    values = frames.numpy()
    return np.concatenate([values.mean(0), values.std(0)])


def _logistic(train: np.ndarray, labels: np.ndarray, test: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return model.fit(train, labels).predict(test)
