from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import AIR, make_long_csv
from tuner.config.space_file import parse_space
from tuner.errors import DataError
from tuner.tasks.forecasting.data import read_series
from tuner.tasks.forecasting.task import DEFAULTS, TASK, ForecastData, make_tensors, split_points

SETTINGS = {**DEFAULTS, "input_len": 12, "horizon": 12, "scaling": "global"}


def test_airline_reads_as_one_monthly_series():
    data = read_series({"data": str(AIR)})
    assert len(data.series) == 1 and len(data.series[0].values) == 144
    assert data.series[0].values[0] == 112 and data.series[0].values[-1] == 432
    assert data.freq.code == "MS" and data.season_length() == 12


def test_seasonal_naive_on_airline_matches_the_published_figure():
    dm = ForecastData(read_series({"data": str(AIR)}), SETTINGS)
    assert dm.baseline_metrics["test_snaive_mae"] == pytest.approx(47.833, abs=1e-3)


def test_split_keeps_test_out_of_training_windows():
    values = np.arange(100, dtype=float)
    split = split_points(len(values), SETTINGS)
    assert (split.val_start, split.test_start) == (76, 88)
    *_, y_raw = make_tensors(values, split.val_start, (0, split.val_start), SETTINGS)
    assert y_raw.max().item() == 75  # last training target is the step before validation
    *_, y_val = make_tensors(
        values, split.val_start, (split.val_start, split.test_start), SETTINGS
    )
    assert y_val.min().item() == 76 and y_val.max().item() == 87


def test_global_scaler_uses_the_training_part_only():
    values = np.concatenate([np.ones(76), np.full(24, 1000.0)])  # a jump after training
    split = split_points(len(values), SETTINGS)
    _, _, loc, scale, _ = make_tensors(values, split.val_start, (split.test_start, 100), SETTINGS)
    assert loc.unique().tolist() == [1.0]  # the jump never leaks into the scaler


def test_window_scaling_is_per_window():
    values = np.arange(100, dtype=float)
    x, y, loc, scale, y_raw = make_tensors(values, 76, (0, 76), {**SETTINGS, "scaling": "window"})
    assert loc[0].item() == pytest.approx(5.5) and loc[1].item() == pytest.approx(6.5)
    assert torch.allclose(
        x * scale + loc,
        torch.as_tensor(
            np.stack([values[i : i + 12] for i in range(len(x))]), dtype=torch.float32
        ),
    )


def test_wide_and_long_files_give_the_same_series(tmp_path):
    long_path = make_long_csv(tmp_path / "long.csv", n_series=2, length=40)
    frame = pd.read_csv(long_path)
    wide = frame.pivot(index="ds", columns="unique_id", values="y").reset_index()
    wide.to_csv(tmp_path / "wide.csv", index=False)
    long_data = read_series({"data": str(long_path)})
    wide_data = read_series({"data": str(tmp_path / "wide.csv"), "target": "s1"})
    assert [s.uid for s in long_data.series] == ["s0", "s1"]
    assert np.allclose(wide_data.series[0].values, long_data.series[1].values)


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "the file is empty"),
        ("month,passengers\n", "no rows"),
        (
            "month,passengers\n2000-01-01,1\n2000-02-01,abc\n",
            "line 3: series 'passengers' has value 'abc'",
        ),
        ("month,passengers\n2000-01-01,1\n2000-02-01,\n", "line 3: .*expected a finite number"),
        ("month,passengers\n2000-01-01,1\n2000-01-01,2\n", "line 3: .*repeats an earlier row"),
        ("month,passengers\n2000-01-01,1\n1.5,2\n", "line 3: .*'1.5' is not a date"),
        ("month,passengers\nnot-a-date,1\n", "line 2: time value 'not-a-date' is not a date"),
    ],
)
def test_bad_csv_names_file_line_and_expectation(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=match) as caught:
        read_series({"data": str(path)})
    assert str(path) in str(caught.value)


def test_missing_columns_and_file(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        read_series({"data": str(tmp_path / "none.csv")})
    with pytest.raises(DataError, match="target column price not found"):
        read_series({"data": str(AIR), "target": "price"})
    with pytest.raises(DataError, match="time column 'when' not found"):
        read_series({"data": str(AIR), "time_col": "when"})


def test_input_len_is_clipped_to_short_series_and_says_so(tmp_path):
    data = read_series({"data": str(make_long_csv(tmp_path / "s.csv", length=60))})
    raw = {
        "metric": "val_mae",
        "params": {"input_len": {"type": "int", "low": 6, "high": 48}},
        "fixed": {"horizon": 6, "folds": 1},
    }
    space, notes = TASK.fit_space(parse_space(raw, TASK.spec, "s.yaml"), data)
    assert space.param("input_len").high == 60 - 12 - 6
    assert any("clipped" in note for note in notes)
    too_long = {**raw, "fixed": {"horizon": 6, "input_len": 100, "folds": 1}, "params": {}}
    with pytest.raises(DataError, match="too short"):
        TASK.fit_space(parse_space(too_long, TASK.spec, "s.yaml"), data)


def test_predict_continues_dates_in_original_units(tmp_path):
    data = read_series({"data": str(make_long_csv(tmp_path / "s.csv", length=48))})
    settings = {**DEFAULTS, "input_len": 12, "horizon": 6, "transform": "log"}
    model = TASK.build_model(settings, None)
    table = TASK.predict(model, {"data": str(tmp_path / "s.csv")}, settings, {})
    assert list(table.columns) == ["unique_id", "ds", "y_hat"]
    assert table.groupby("unique_id").size().tolist() == [6, 6]
    first = table[table.unique_id == "s0"]
    assert first.ds.iloc[0] == pd.Timestamp("2004-01-01")
    assert first.ds.iloc[-1] == pd.Timestamp("2004-06-01")
    last_level = data.series[0].values[-12:].mean()
    assert np.all(np.abs(first.y_hat - last_level) < 5 * data.series[0].values.std())


@pytest.mark.parametrize(
    "loss, expected",
    [
        ("mse", torch.nn.functional.mse_loss),
        ("mae", torch.nn.functional.l1_loss),
        ("huber", torch.nn.functional.smooth_l1_loss),
    ],
)
def test_training_loss_follows_the_loss_setting(loss, expected):
    settings = {**DEFAULTS, "loss": loss}
    datamodule = TASK.build_datamodule(read_series({"data": AIR}), settings)
    model = TASK.build_model(settings, datamodule)
    batch = next(iter(datamodule.train_dataloader()))
    with torch.no_grad():
        value = model._step(batch, "train")
        assert value.item() == pytest.approx(expected(model(batch[0]), batch[1]).item())


def test_aligned_head_reads_each_step_from_the_state_one_horizon_before_it():
    settings = {**DEFAULTS, "input_len": 24, "horizon": 12, "head": "aligned"}
    model = TASK.build_model(settings, None).eval()
    x = torch.randn(2, 24)
    changed = x.clone()
    changed[:, 20] += 5.0  # seen by the hidden states at positions 20..23: steps 8..11
    with torch.no_grad():
        before, after = model(x), model(changed)
    moved = (before - after).abs().amax(dim=0) > 1e-6
    assert moved.tolist() == [False] * 8 + [True] * 4


def test_aligned_head_stretches_windows_shorter_than_the_horizon():
    settings = {**DEFAULTS, "input_len": 6, "horizon": 12, "head": "aligned"}
    model = TASK.build_model(settings, None)
    assert model(torch.randn(3, 6)).shape == (3, 12)
