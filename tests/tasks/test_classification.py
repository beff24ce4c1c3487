from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import REPO
from tuner.config.space_file import parse_space
from tuner.contract.checkpoints import load_checkpoint, restore_model, save_checkpoint
from tuner.errors import DataError
from tuner.tasks.classification.data import UNKNOWN, encode, read_sequences
from tuner.tasks.classification.task import (
    DEFAULTS,
    TASK,
    ClassCounts,
    SequenceClassifier,
    SequenceData,
    pad,
)


def _model(pooling="last", bidirectional=False, **extra):
    torch.manual_seed(0)
    args = dict(
        n_features=3,
        classes=["a", "b"],
        hidden_size=6,
        num_layers=2,
        dropout=0.0,
        lr=1e-3,
        pooling=pooling,
        bidirectional=bidirectional,
    )
    return SequenceClassifier(**{**args, **extra}).eval()


@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize(("patch", "scaling"), [(1, "features"), (3, "sequence"), (3, "both")])
def test_padding_never_changes_a_prediction(pooling, bidirectional, patch, scaling):
    model = _model(pooling, bidirectional, patch=patch, scaling=scaling)
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(5, 3)).astype(np.float32)
    alone, lengths = pad([seq], text=False)
    with_longer, lengths2 = pad([seq, rng.normal(size=(11, 3)).astype(np.float32)], text=False)
    assert with_longer.shape[1] == 11  # padded to another length
    with torch.no_grad():
        a = model(alone, lengths)[0]
        b = model(with_longer, lengths2)[0]
    torch.testing.assert_close(a, b)


def test_sequence_scaling_reads_the_shape_and_both_adds_level_and_spread():
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(7, 3)).astype(np.float32)
    x, lengths = pad([seq, 4 * seq - 3], text=False)
    for scaling, alike in (("sequence", True), ("both", False), ("features", False)):
        with torch.no_grad():
            first, moved = _model("mean", scaling=scaling)(x, lengths)
        assert torch.allclose(first, moved, atol=1e-5) == alike, scaling


def _long_csv(path, rows):
    pd.DataFrame(rows, columns=["sequence_id", "step", "f1", "f2", "label"]).to_csv(
        path, index=False
    )
    return path


def test_long_csv_reads_sequences_in_step_order(tmp_path):
    rows = [("s1", 1, 3.0, 4.0, "up"), ("s1", 0, 1.0, 2.0, "up"), ("s2", 0, 5.0, 6.0, "down")]
    data = read_sequences({"data": str(_long_csv(tmp_path / "d.csv", rows))})
    assert data.ids == ["s1", "s2"] and data.labels == ["up", "down"]
    np.testing.assert_array_equal(data.sequences[0], [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    "rows, match",
    [
        ([("s1", 0, 1.0, "x", "up")], "line 2: column 'f2' has 'x'; expected a finite number"),
        (
            [("s1", 0, 1.0, 2.0, "up"), ("s1", 1, 1.0, 2.0, "down")],
            "several values in column 'label'",
        ),
    ],
)
def test_bad_long_csv(tmp_path, rows, match):
    with pytest.raises(DataError, match=match):
        read_sequences({"data": str(_long_csv(tmp_path / "d.csv", rows))})


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "bad.npz", X=np.zeros((3, 4)))
    with pytest.raises(DataError, match=r"X has shape \(3, 4\); expected \(sequences, steps"):
        read_sequences({"data": str(tmp_path / "bad.npz")})
    np.savez(tmp_path / "nan.npz", X=np.full((2, 3, 1), np.nan), y=[0, 1])
    with pytest.raises(DataError, match=r"X\[0\] holds NaN"):
        read_sequences({"data": str(tmp_path / "nan.npz")})


def test_vocabulary_is_built_on_train_and_survives_a_checkpoint(tmp_path):
    texts = ["abc", "abd", "xyz", "xyw", "aaa", "zzz"]
    frame = pd.DataFrame(
        {
            "text": texts,
            "label": ["p", "p", "q", "q", "p", "q"],
            "split": ["train", "train", "train", "train", "val", "test"],
        }
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    data = read_sequences({"data": str(tmp_path / "t.csv")})
    datamodule = SequenceData(data, DEFAULTS)
    assert datamodule.inputs["vocabulary"] == "abcdwxyz"
    model = TASK.build_model({**DEFAULTS, "hidden_size": 4}, datamodule)
    path = save_checkpoint(tmp_path / "m.ckpt", model, "classification", DEFAULTS, {})
    restored = restore_model(load_checkpoint(path), TASK)
    assert restored.hparams.vocabulary == "abcdwxyz"
    ids = encode(
        np.frombuffer("a?z".encode("utf-32-le"), dtype=np.uint32), restored.hparams.vocabulary
    )
    assert ids.tolist() == [2, UNKNOWN, 9]
    table = TASK.predict(restored, {"data": str(tmp_path / "t.csv")}, DEFAULTS, {"proba": True})
    assert list(table.columns) == ["sequence_id", "label", "probability", "p_p", "p_q"]
    np.testing.assert_allclose(table[["p_p", "p_q"]].sum(axis=1), 1.0, rtol=1e-5)


def test_splits_class_weights_and_majority_baseline(tmp_path):
    X = np.random.default_rng(0).normal(size=(100, 4, 2)).astype(np.float32)
    y = np.array([0] * 80 + [1] * 20)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    datamodule = SequenceData(read_sequences({"data": str(tmp_path / "d.npz")}), DEFAULTS)
    sizes = {stage: len(t[2]) for stage, t in datamodule.tensors.items()}
    # stratified: 20% of each class to test, then 15% of what is left to validation
    assert sizes == {"train": 68, "val": 12, "test": 20}
    assert datamodule.baseline_metrics["test_majority_acc"] == pytest.approx(0.8)
    model = TASK.build_model(DEFAULTS, datamodule)
    weights = model.loss.weight.tolist()
    assert weights[1] > weights[0] * 3  # the rare class counts more


def test_macro_f1_on_known_counts():
    counts = ClassCounts(2)
    counts.add(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]))
    assert counts.accuracy() == 0.75
    # class 0: p=1/2 r=1 f1=2/3; class 1: p=1 r=2/3 f1=0.8
    assert counts.macro_f1() == pytest.approx((2 / 3 + 0.8) / 2)


def test_long_sequences_are_read_in_patches_and_say_so(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "long.npz"
    np.savez(path, X=rng.normal(size=(40, 300, 1)), y=np.repeat(["a", "b"], 20))
    data = read_sequences({"data": str(path)})
    space = TASK.fit_space(parse_space({}, TASK.spec, "s.yaml"), data)
    assert space[0].fixed["patch"] == 3  # 300 steps in at most 100: 3 per LSTM step
    assert any("patch: 3 steps per LSTM step" in note for note in space[1])
    short = read_sequences({"data": str(REPO / "tasks" / "data" / "japanese_vowels.npz")})
    assert TASK.fit_space(parse_space({}, TASK.spec, "s.yaml"), short)[0].fixed["patch"] == 1
    pinned = parse_space({"fixed": {"patch": 1}}, TASK.spec, "s.yaml")
    assert TASK.fit_space(pinned, data)[0].fixed["patch"] == 1
    model = _model(patch=5, n_features=1)
    assert model.backbone.lstm.input_size == 5
    x, lengths = pad([s for s in data.sequences[:2]], text=False)
    assert model(x, lengths).shape == (2, 2)
