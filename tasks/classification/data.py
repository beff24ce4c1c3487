"""Sequence-classification data: long CSV, .npz or text CSV read and validated, each
sequence's split (train / val / test, or its cross-validation fold), and the space fitted to
the data (folds resolved, splits that leave every trial training and validation items)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuner.config.files import excerpt, regular_file
from tuner.contract.datafiles import (
    NUMBER,
    Table,
    is_frame,
    read_table,
    require_splits,
    split_column,
    unfit_numbers,
    worst_split_settings,
)
from tuner.errors import DataError, some_of
from tuner.tasks.classification.sizing import sized
from tuner.tasks.classification.spec import CV_FOLDS, PATCH_STEPS, SPEC
from tuner.training.folds import AUTO, auto_folds, fold_count, require_fixed, stratified_folds

PAD, UNKNOWN = 0, 1  # token ids reserved in every character vocabulary
DEFAULTS: dict[str, Any] = SPEC.defaults


@dataclass(frozen=True)
class SequenceSet:
    """Sequences (numeric (T, F) arrays, or token-id arrays for text), labels and splits."""

    path: str
    ids: list[str]
    sequences: list[np.ndarray]
    labels: list[str] | None  # None when the file has no labels (prediction input)
    split: np.ndarray | None  # 'train' / 'val' / 'test' per sequence, or None
    text: bool = False

    @property
    def n_features(self) -> int:
        return 0 if self.text else int(self.sequences[0].shape[1])


def read_sequences(args: Mapping[str, Any]) -> SequenceSet:
    """`args['data']`: a .npz or CSV path, a DataFrame (long or text), or numpy arrays
    `(X, y)` / `X` as a .npz holds them."""
    source = args["data"]
    if isinstance(source, (tuple, np.ndarray)):
        X, y = source if isinstance(source, tuple) else (source, None)
        arrays = {"X": np.asarray(X)} | ({"y": np.asarray(y)} if y is not None else {})
        return _from_arrays("the arrays", arrays)
    if not is_frame(source):
        path = Path(source)
        regular_file(path, "data file", "a .csv or .npz file (--data)", DataError)
        if path.suffix == ".npz":
            return _read_npz(path)
    table = read_table(source)
    if "text" in table.frame.columns:
        return _read_text_csv(table)
    return _read_long_csv(table)


def _read_npz(path: Path) -> SequenceSet:
    try:
        arrays = dict(np.load(path, allow_pickle=False))
    except Exception as exc:  # not a zip, or object arrays that would need pickle
        raise DataError(f"{path}: cannot read as .npz ({exc})") from None
    return _from_arrays(str(path), arrays)


def _from_arrays(path: str, arrays: Mapping[str, np.ndarray]) -> SequenceSet:
    if "X" not in arrays:
        raise DataError(f"{path}: no array 'X'; expected X (N, T, F), optional lengths, y, split")
    try:
        X = np.asarray(arrays["X"], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: X is not numeric ({excerpt(str(exc))})") from None
    if X.ndim != 3:
        raise DataError(f"{path}: X has shape {X.shape}; expected (sequences, steps, features)")
    lengths = arrays["lengths"] if "lengths" in arrays else np.full(len(X), X.shape[1])
    if len(lengths) != len(X) or lengths.min() < 1 or lengths.max() > X.shape[1]:
        raise DataError(f"{path}: lengths must be N values between 1 and {X.shape[1]}")
    if unfit_numbers(X).any():
        row = int(np.argwhere(unfit_numbers(X))[0][0])
        raise DataError(f"{path}: X[{row}] holds NaN, inf or a value too large; expected {NUMBER}")
    X = X.astype(np.float32)
    labels = [str(v) for v in arrays["y"]] if "y" in arrays else None
    split = split_column(path, arrays["split"]) if "split" in arrays else None
    sequences = [X[i, : int(n)] for i, n in enumerate(lengths)]
    return SequenceSet(path, [str(i) for i in range(len(X))], sequences, labels, split)


def _read_long_csv(table: Table) -> SequenceSet:
    path, frame = table.name, table.frame
    for column in ("sequence_id", "step"):
        if column not in frame.columns:
            raise DataError(
                f"{path}: column {column!r} not found; expected sequence_id, step, "
                f"feature columns, label (or text,label)"
            )
    extra = {"sequence_id", "step", "label", "split"}
    features = [c for c in frame.columns if c not in extra]
    if not features:
        raise DataError(f"{path}: no feature columns besides sequence_id, step, label, split")
    values = frame[features].apply(pd.to_numeric, errors="coerce")
    bad = unfit_numbers(values.to_numpy(dtype=np.float64))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"{path}: {table.where(int(row))}: column {features[col]!r} has "
            f"{frame.iloc[row][features[col]]!r}; expected {NUMBER}"
        )
    frame = frame.assign(**{c: values[c] for c in features}).sort_values(
        ["sequence_id", "step"], kind="stable"
    )
    ids, sequences, labels, split = [], [], [], []
    for sequence_id, part in frame.groupby("sequence_id", sort=False):
        ids.append(str(sequence_id))
        sequences.append(part[features].to_numpy(dtype=np.float32))
        if "label" in part:
            _check_constant(path, part, "label", sequence_id)
            labels.append(str(part["label"].iloc[0]))
        if "split" in part:
            _check_constant(path, part, "split", sequence_id)
            split.append(part["split"].iloc[0])
    return SequenceSet(
        path, ids, sequences, labels or None, split_column(path, split) if split else None
    )


def _check_constant(path: str, part: pd.DataFrame, column: str, sequence_id: Any) -> None:
    if part[column].nunique() > 1:
        raise DataError(
            f"{path}: sequence {sequence_id!r} has several values in column "
            f"{column!r}; expected one per sequence"
        )


def _read_text_csv(table: Table) -> SequenceSet:
    path, frame = table.name, table.frame
    texts = frame["text"]
    if texts.isna().any():
        raise DataError(f"{path}: {table.where(int(np.argmax(texts.isna())))}: empty text")
    labels = [str(v) for v in frame["label"]] if "label" in frame else None
    split = split_column(path, frame["split"], table) if "split" in frame else None
    ids = [str(i) for i in frame["id"]] if "id" in frame else [str(i) for i in range(len(frame))]
    sequences = [np.frombuffer(str(t).encode("utf-32-le"), dtype=np.uint32) for t in texts]
    return SequenceSet(str(path), ids, sequences, labels, split, text=True)


def build_vocabulary(sequences: list[np.ndarray]) -> str:
    """Every character of the training texts, in code-point order (ids 2.. in this order)."""
    codes = np.unique(np.concatenate(sequences)) if sequences else np.array([], np.uint32)
    return "".join(chr(c) for c in codes)


def encode(text_codes: np.ndarray, vocabulary: str) -> np.ndarray:
    """Code points -> token ids; characters not in the vocabulary map to UNKNOWN."""
    lookup = {ord(ch): i + 2 for i, ch in enumerate(vocabulary)}
    return np.array([lookup.get(int(c), UNKNOWN) for c in text_codes], dtype=np.int64)


# ---------------------------------------------------------------- splits and folds


def assign_splits(
    data: SequenceSet, settings: Mapping[str, Any], fold: int | None = 0
) -> np.ndarray:
    """The file's split column when given; val (and test) carved from train otherwise,
    stratified by label with a fixed seed, so every trial sees the same split. With K > 1
    folds, fold k validates on the k-th stratified fold of every non-test sequence (train
    and val rows together) and trains on the others; fold None (the refit) trains on all."""
    split = data.split.copy() if data.split is not None else np.full(len(data.ids), "train")
    rng = np.random.default_rng(0)
    labels = np.asarray(data.labels)
    holdout = fold_count(settings) == 1 and fold is not None
    carve = [("test", float(settings["test_fraction"]))] if data.split is None else []
    if "val" not in split and holdout:
        carve.append(("val", float(settings["val_fraction"])))
    for name, fraction in carve:
        for label in np.unique(labels):
            pool = rng.permutation(np.flatnonzero((labels == label) & (split == "train")))
            split[pool[: int(round(fraction * len(pool)))]] = name
    if holdout:
        return split
    pool = np.flatnonzero(split != "test")
    split[pool] = "train"
    if fold is not None:
        split[pool[stratified_folds(labels[pool], fold_count(settings)) == fold]] = "val"
    return split


MAX_CLASSES = 10_000  # an output per class; more is an id column, not a label


def fit_space(space: Any, data: SequenceSet) -> tuple[Any, list[str]]:
    """Labels of at least two classes, `folds` resolved (0: CV_FOLDS stratified folds when
    a hold-out would validate on few sequences), splits that leave training and
    validation sequences for every trial of the space, and what the space leaves out sized
    by fold 0's training sequences."""
    if not data.labels or len(set(data.labels)) < 2:
        raise DataError(
            f"{data.path}: expected labels of at least two classes (column 'label' or array 'y')"
        )
    if len(set(data.labels)) > MAX_CLASSES:
        raise DataError(
            f"{data.path}: {len(set(data.labels))} classes; at most {MAX_CLASSES} (is the "
            f"label column an id or a number to predict?)"
        )
    require_fixed(space, ("folds",))
    space, notes = _resolve_folds(space, data)
    space, patch_notes = _resolve_patch(space, data)
    notes += patch_notes
    settings = worst_split_settings(space, DEFAULTS)
    splits = [assign_splits(data, settings, fold) for fold in range(fold_count(settings))]
    for split in splits:
        require_splits(data.path, split, "sequences")
        _require_trained_classes(data, split)
    train = np.flatnonzero(splits[0] == "train")  # fold 0's: what the sizing reads
    chosen = ([data.sequences[i] for i in train], [data.labels[i] for i in train])
    space, sized_notes = sized(space, *chosen)
    return space, notes + sized_notes


def _require_trained_classes(data: SequenceSet, split: np.ndarray) -> None:
    """A class seen only in validation or test: the model cannot predict it, and its
    score there says nothing about the model."""
    labels = np.asarray(data.labels, dtype=object)
    trained = set(labels[split == "train"])
    for part in ("val", "test"):
        unseen = sorted(set(labels[split == part]) - trained, key=str)
        if unseen:
            raise DataError(
                f"{data.path}: class {some_of(unseen)} is in the {part} part but not in training; "
                f"expected every class among the training sequences (give them some, or "
                f"drop those sequences)"
            )


def _resolve_patch(space: Any, data: SequenceSet) -> tuple[Any, list[str]]:
    """`patch: 0` becomes the fewest steps per LSTM step that read the longest sequence in
    at most PATCH_STEPS steps (1 for short sequences)."""
    if space.param("patch") is not None or int({**DEFAULTS, **space.fixed}["patch"]) != AUTO:
        return space, []
    longest = max(len(sequence) for sequence in data.sequences)
    patch = -(-longest // PATCH_STEPS)
    space = space.with_fixed({"patch": patch})
    if patch == 1:
        return space, []
    return space, [
        f"patch: {patch} steps per LSTM step (the longest sequence has {longest} steps; "
        f"read in at most {PATCH_STEPS}); --set patch=1 reads every step"
    ]


def _resolve_folds(space: Any, data: SequenceSet) -> tuple[Any, list[str]]:
    """`folds: 0` becomes CV_FOLDS (at most the smallest class's count, so that every fold
    validates on every class) when a hold-out would validate on fewer than AUTO_BELOW
    sequences, else 1."""
    settings = worst_split_settings(space, DEFAULTS)
    if int(settings["folds"]) != AUTO:
        return space, []
    holdout = assign_splits(data, {**settings, "folds": 1})
    validated, pool = int((holdout == "val").sum()), int((holdout != "test").sum())
    _, class_sizes = np.unique(np.asarray(data.labels)[holdout != "test"], return_counts=True)
    smallest = int(class_sizes.min())
    folds = auto_folds(validated, CV_FOLDS, smallest if smallest >= 2 else 1)
    space = space.with_fixed({"folds": folds})
    if folds == 1:
        return space, []
    return space, [
        f"folds: {folds} stratified folds over the {pool} non-test sequences (a hold-out "
        f"would validate on {validated}, too few to choose on); --set folds=1 keeps one "
        f"hold-out"
    ]
