"""Sequence classification: numeric sequences (signals, images read row by row) or texts
(characters) -> (bi)LSTM over packed sequences -> last-state or mean pooling -> classes.

Padding never changes a prediction: sequences are packed, and mean pooling divides by each
sequence's own length. Feature scaling and the character vocabulary are fitted on the
training split only and travel inside the model's hyperparameters (so in every checkpoint).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from tuner.config.files import excerpt
from tuner.contract.task import Task
from tuner.contract.tensors import TensorData
from tuner.errors import DataError, some_of
from tuner.tasks.classification.baselines import (
    nearest_neighbour_baseline,
    statistical_baselines,
)
from tuner.tasks.classification.data import (
    PAD,
    SequenceSet,
    assign_splits,
    build_vocabulary,
    encode,
    fit_space,
    read_sequences,
)
from tuner.tasks.classification.model import ClassCounts, SequenceClassifier, average_probabilities
from tuner.tasks.classification.spec import SPEC
from tuner.tasks.classification.views import report_views
from tuner.training.folds import fold_count

DEFAULTS: dict[str, Any] = SPEC.defaults
DATA = Path(__file__).parents[1] / "data"  # the shipped demo data (tasks/data)


# ---------------------------------------------------------------- splits and tensors


def pad(sequences: list[np.ndarray], text: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(padded batch, lengths); padding is zeros (PAD for texts)."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    width = int(lengths.max()) if len(sequences) else 1
    if text:
        out = torch.full((len(sequences), width), PAD, dtype=torch.int64)
    else:
        out = torch.zeros((len(sequences), width, sequences[0].shape[1]), dtype=torch.float32)
    for i, seq in enumerate(sequences):
        out[i, : len(seq)] = torch.as_tensor(np.array(seq))  # a copy: it may be read-only
    return out, lengths


def fit_inputs(
    data: SequenceSet, train: np.ndarray, texts_from: np.ndarray | None = None
) -> dict[str, Any]:
    """Per-feature mean / std (numbers) from the training sequences, or the vocabulary
    (texts) from `texts_from` (default: the training sequences too; with K folds every
    non-test text, so that the K fold models kept as one read a text alike)."""
    chosen = [s for s, keep in zip(data.sequences, train, strict=True) if keep]
    if data.text:
        source = train if texts_from is None else texts_from
        seen = [s for s, keep in zip(data.sequences, source, strict=True) if keep]
        return {"vocabulary": build_vocabulary(seen), "feature_mean": [], "feature_std": []}
    steps = np.concatenate(chosen)
    std = steps.std(axis=0)
    return {
        "vocabulary": "",
        "feature_mean": steps.mean(axis=0).tolist(),
        "feature_std": np.where(std < 1e-8, 1.0, std).tolist(),
    }


def prepare_inputs(data: SequenceSet, inputs: Mapping[str, Any]) -> list[np.ndarray]:
    if data.text:
        return [encode(s, inputs["vocabulary"]) for s in data.sequences]
    return data.sequences


# ---------------------------------------------------------------- data module


class SequenceData(TensorData):
    """Padded sequences, lengths and label ids per split, in memory."""

    def __init__(self, data: SequenceSet, settings: Mapping[str, Any], seed: int = 0) -> None:
        super().__init__(settings, seed)
        if not data.labels:
            raise DataError(f"{data.path}: no labels; expected a 'label' column or array 'y'")
        self.classes = sorted(set(data.labels))
        split = assign_splits(data, settings, settings.get("fold", 0))
        texts_from = split != "test" if fold_count(settings) > 1 else None
        self.inputs = fit_inputs(data, split == "train", texts_from)
        sequences = prepare_inputs(data, self.inputs)
        y = np.array([self.classes.index(label) for label in data.labels])
        for stage in ("train", "val", "test"):
            chosen = np.flatnonzero(split == stage)
            if len(chosen):
                x, lengths = pad([sequences[i] for i in chosen], data.text)
                self.tensors[stage] = (x, lengths, torch.as_tensor(y[chosen]))
        counts = np.bincount(y[split == "train"], minlength=len(self.classes))
        self.class_counts = counts.tolist()
        self.baseline_metrics = {
            **majority_baseline(int(counts.argmax()), self.tensors, len(counts)),
            **nearest_neighbour_baseline(data, split),
        }


def majority_baseline(majority: int, tensors: dict, n_classes: int) -> dict[str, float]:
    metrics = {}
    for stage in ("val", "test"):
        if stage in tensors:
            counts = ClassCounts(n_classes)
            target = tensors[stage][2]
            counts.add(torch.full_like(target, majority), target)
            metrics[f"{stage}_majority_acc"] = counts.accuracy()
            metrics[f"{stage}_majority_f1"] = counts.macro_f1()
    return metrics


# ---------------------------------------------------------------- model


def build_model(settings: Mapping[str, Any], datamodule: SequenceData) -> SequenceClassifier:
    counts = np.asarray(datamodule.class_counts, dtype=np.float64)
    weights = None
    if settings["class_weights"] == "auto" and counts.max() > 1.5 * max(counts.min(), 1):
        weights = (counts.sum() / (len(counts) * np.maximum(counts, 1))).tolist()
    first = datamodule.tensors["train"][0]
    return SequenceClassifier(
        n_features=0 if first.dim() == 2 else int(first.shape[2]),
        classes=datamodule.classes,
        class_weights=weights,
        **datamodule.inputs,
        **SPEC.model_args(settings),
    )


# ---------------------------------------------------------------- contract glue


def add_data_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("classification data")
    group.add_argument(
        "--data",
        help="long CSV (sequence_id, step, features..., label[, split]),"
        " .npz (X, lengths, y, split) or text CSV (text, label[, split]); "
        "default: the shipped JapaneseVowels set",
    )


def build_datamodule(data: SequenceSet, settings: Mapping[str, Any]) -> SequenceData:
    return SequenceData(data, settings, seed=int(settings.get("seed", 0)))


def require_inputs(hp: Mapping[str, Any], data: SequenceSet) -> None:
    """The data holds what the model reads: texts, or as many features per step."""
    wanted = "texts" if hp["vocabulary"] else f"{hp['n_features']} features per step"
    found = "texts" if data.text else f"{data.n_features} features per step"
    if wanted != found:
        raise DataError(f"{data.path}: the model reads {wanted}; this file holds {found}")


def fits_model(hp: Mapping[str, Any], data: SequenceSet) -> None:
    """A fine-tune's data: what the model reads, and only classes it has an output for."""
    require_inputs(hp, data)
    unknown = sorted(set(data.labels or ()) - set(map(str, hp["classes"])))
    if unknown:
        raise DataError(
            f"{data.path}: class {some_of(unknown)} is not one of the model's "
            f"{len(hp['classes'])} classes; a fine-tune keeps its output layer, so expected "
            f"labels among "
            f"{excerpt(', '.join(map(str, hp['classes'])))}"
        )


def predict(
    model: SequenceClassifier,
    data_args: Mapping[str, Any],
    settings: Mapping[str, Any],
    options: Mapping[str, Any],
) -> pd.DataFrame:
    """sequence_id, label, probability (or one p_<class> column per class with proba)."""
    data = read_sequences(data_args)
    hp = model.hparams
    require_inputs(hp, data)
    x, lengths = pad(prepare_inputs(data, hp), data.text)
    model.eval()
    with torch.no_grad():
        probabilities = torch.softmax(model(x, lengths), dim=1).numpy()
    table = pd.DataFrame(
        {
            "sequence_id": data.ids,
            "label": [hp.classes[i] for i in probabilities.argmax(1)],
            "probability": probabilities.max(1),
        }
    )
    if options.get("proba"):
        for i, name in enumerate(hp.classes):
            table[f"p_{name}"] = probabilities[:, i]
    return table


def example(data: SequenceSet, settings: Mapping[str, Any]) -> pd.DataFrame:
    """Two sequences without their labels: as texts, or long (one row per step)."""
    chosen = list(zip(data.ids[:2], data.sequences[:2], strict=True))
    if data.text:
        texts = ["".join(map(chr, codes)) for _, codes in chosen]
        return pd.DataFrame({"text": texts})
    rows = [
        {"sequence_id": sid, "step": step, **{f"x{i}": float(v) for i, v in enumerate(values)}}
        for sid, sequence in chosen
        for step, values in enumerate(sequence)
    ]
    return pd.DataFrame(rows)


TASK = Task(
    spec=SPEC,
    add_data_args=add_data_args,
    load_data=read_sequences,
    fit_space=fit_space,
    build_datamodule=build_datamodule,
    build_model=build_model,
    model_class=SequenceClassifier,
    example=example,
    report_views=report_views,
    forward_inputs=2,  # (features, lengths)
    ensemble_inputs=("n_features", "classes", "vocabulary"),
    predict=predict,
    fits_model=fits_model,
    combine=average_probabilities,
    statistical_baselines=statistical_baselines,
    split_settings=("test_fraction",),
    default_data=str(DATA / "japanese_vowels.npz"),
    smoke={"hidden_size": 8, "max_epochs": 2, "batch_size": 64},
)
