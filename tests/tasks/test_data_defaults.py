"""Defaults from the data, on generated sets nobody tuned on: time read as the file writes
it, the horizon and input windows from the frequency, and a classifier that learns shapes."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from benchmarks.generated import FREQUENCIES, seasonal_series, waveforms
from tests.conftest import REPO, run_cli
from tuner.config.space_file import load_space
from tuner.errors import DataError
from tuner.tasks.forecasting.data import read_series
from tuner.tasks.forecasting.task import TASK

HORIZONS = {
    "hourly": 24,
    "daily": 7,
    "business-daily": 5,
    "weekly": 13,
    "monthly": 12,
    "quarterly": 4,
    "yearly": 6,  # 60 values: test, validation and 3 earlier cutoffs of 6 leave 30 = 5 x 6
    "integer": 10,  # 200 values: room for the longest default, 10
}


def _default_space():
    return load_space(REPO / "search_spaces" / "forecasting.yaml", TASK.spec)


@pytest.mark.parametrize("frequency", list(FREQUENCIES))
def test_each_frequency_gives_its_horizon_and_windows(frequency):
    data = read_series({"data": seasonal_series(frequency)})
    space, notes = TASK.fit_space(_default_space(), data)
    horizon = HORIZONS[frequency]
    assert space.fixed["horizon"] == horizon
    window = space.param("input_len")
    assert (window.low, window.step) == (2 * horizon, horizon)
    assert window.high <= 6 * horizon
    name = "integer steps of 5" if frequency == "integer" else frequency
    assert notes[0].startswith(f"frequency: {name}")
    said = [note for note in notes if note.startswith("from the data:")]
    assert [note.split()[3] for note in said] == ["horizon", "input_len"]


def test_a_space_or_set_that_names_the_horizon_wins():
    data = read_series({"data": seasonal_series("daily")})
    space, notes = TASK.fit_space(_default_space().with_fixed({"horizon": 3}), data)
    assert space.fixed["horizon"] == 3 and space.param("input_len").low == 6
    assert not any("from the data: horizon" in note for note in notes)
    assert "horizon 3, as the space or --set names it (from the data: 7, one season" in " ".join(
        notes
    )


def test_integer_steps_stay_integers_in_predictions_and_in_mlflow(workdir, monkeypatch):
    seasonal_series("integer", n_series=1, length=120).to_csv("steps.csv", index=False)
    budget = ["--set", "max_epochs=1", "--set", "hidden_size=4", "--set", "num_layers=1"]
    done = run_cli(workdir, "search", "--task", "forecasting", "--data", "steps.csv",
                   "--trials", "1", "--study", "steps", *budget)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "frequency: integer steps of 5" in done.stdout + done.stderr
    done = run_cli(workdir, "predict", "--from", "study:steps", "--data", "steps.csv",
                   "--out", "ahead.csv")  # fmt: skip
    assert done.returncode == 0, done.stderr
    ahead = pd.read_csv("ahead.csv")
    last = 1000 + 5 * 119
    assert ahead["ds"].tolist() == [last + 5 * k for k in range(1, 11)]
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workdir}/mlruns/mlflow.db")
    served = mlflow.pyfunc.load_model("models:/steps@best")
    example = served.input_example
    assert pd.api.types.is_integer_dtype(example["ds"])
    assert pd.api.types.is_integer_dtype(served.predict(example)["ds"])


def _dates(form: str, length: int = 40) -> pd.DataFrame:
    days = pd.date_range("2023-01-01", periods=length, freq="D")
    return pd.DataFrame({"ds": days.strftime(form), "y": np.arange(length, dtype=float)})


def test_a_file_that_fits_only_day_first_is_read_day_first_throughout(tmp_path):
    path = tmp_path / "days.csv"
    _dates("%d/%m/%Y").to_csv(path, index=False)
    data = read_series({"data": str(path)})
    times = data.series[0].times
    assert times[0] == pd.Timestamp("2023-01-01") and times[12] == pd.Timestamp("2023-01-13")
    assert data.freq.code == "D" and "dates read as %d/%m/%Y" in data.notes[0]
    days = _dates("%d/%m/%Y")
    shuffled = days.iloc[[*range(20, 40), *range(20)]]  # starts on the 21st: month-first
    # fails on the first row already
    shuffled.to_csv(path, index=False)
    assert "dates read as %d/%m/%Y" in " ".join(read_series({"data": str(path)}).notes)


def test_two_digit_years_are_read_one_way_too(tmp_path):
    path = tmp_path / "yy.csv"
    _dates("%d/%m/%y").to_csv(path, index=False)
    data = read_series({"data": str(path)})
    times = data.series[0].times
    assert times[1] == pd.Timestamp("2023-01-02") and times[12] == pd.Timestamp("2023-01-13")
    assert data.freq.code == "D" and "dates read as %d/%m/%y" in " ".join(data.notes)


def test_dates_that_read_both_ways_are_refused_and_nothing_is_created(workdir):
    _dates("%d/%m/%Y", length=12).to_csv("both.csv", index=False)
    done = run_cli(workdir, "search", "--task", "forecasting", "--data", "both.csv")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "month-first (%m/%d/%Y) and day-first (%d/%m/%Y)" in line
    assert "'02/01/2023' as 2023-02-01 or 2023-01-02" in line and "--date-format" in line
    assert sorted(p.name for p in workdir.iterdir()) == ["both.csv"]


def test_date_format_wins(tmp_path):
    path = tmp_path / "both.csv"
    _dates("%d/%m/%Y", length=12).to_csv(path, index=False)
    data = read_series({"data": str(path), "date_format": "%d/%m/%Y"})
    assert data.series[0].times[1] == pd.Timestamp("2023-01-02") and data.freq.code == "D"
    with pytest.raises(DataError, match=r"line 2: time value '01/01/2023' is not a date in "
                                        r"the form --date-format uses \(%Y-%m-%d"):  # fmt: skip
        read_series({"data": str(path), "date_format": "%Y-%m-%d"})
    notes = read_series({"data": str(path), "date_format": "%d/%m/%Y"}).notes
    assert "dates read as %d/%m/%Y (--date-format)" in " ".join(notes)


@pytest.mark.parametrize(
    "form, words",
    [
        ("%Q/%m/%Y", "--date-format '%Q/%m/%Y': 'Q' is a bad directive"),
        ("dd/mm/yyyy", "--date-format 'dd/mm/yyyy': no strftime codes; expected e.g. %d/%m/%Y"),
    ],
)
def test_a_date_format_pandas_cannot_use_is_one_line_and_exit_2(workdir, form, words):
    _dates("%d/%m/%Y").to_csv("days.csv", index=False)
    done = run_cli(workdir, "search", "--task", "forecasting", "--data", "days.csv",
                   "--date-format", form)  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert words in line
    assert sorted(p.name for p in workdir.iterdir()) == ["days.csv"]


@pytest.mark.parametrize(
    "cell, date_format, words",
    [
        ("", None, "line 4: time value an empty cell is neither a date nor an integer step"),
        ("1.5", None, "line 4: time value '1.5' is neither a date nor an integer step"),
        ("2", "%d/%m/%Y", "time column holds integer steps, not dates; expected no --date-format"),
    ],
)
def test_time_cells_are_shown_as_written(tmp_path, cell, date_format, words):
    path = tmp_path / "steps.csv"
    rows = [str(k) for k in range(30)]
    rows[2] = cell
    path.write_text("ds,y\n" + "".join(f"{ds},{k}\n" for k, ds in enumerate(rows)))
    with pytest.raises(Exception, match=re.escape(words)):
        read_series({"data": str(path), "date_format": date_format})


def test_rows_out_of_order_are_sorted_with_a_note(tmp_path):
    path = tmp_path / "shuffled.csv"
    frame = seasonal_series("monthly", n_series=2, length=50)
    frame.sample(frac=1, random_state=0).to_csv(path, index=False)
    data = read_series({"data": str(path)})
    for series in data.series:
        assert series.times.is_monotonic_increasing
        expected = frame[frame.unique_id == series.uid]["y"].to_numpy()
        np.testing.assert_allclose(series.values, expected)
    assert re.search(r"rows sorted by time in 2 series \('s\d', 's\d'\)", " ".join(data.notes))


def test_the_first_trial_scales_by_sequence_where_levels_say_nothing():
    from tuner.tasks.classification.data import read_sequences
    from tuner.tasks.classification.task import TASK as CLASSIFIER

    space = load_space(REPO / "search_spaces" / "classification.yaml", CLASSIFIER.spec)
    for data, scaling in (
        (waveforms(3, n=90, seed=1), "sequence"),  # random levels and amplitudes
        (str(REPO / "tasks" / "data" / "japanese_vowels.npz"), "features"),  # speakers' levels
    ):
        fitted, notes = CLASSIFIER.fit_space(space, read_sequences({"data": data}))
        assert fitted.first["scaling"] == scaling
        assert any(f"first trial's scaling {scaling}" in note for note in notes)
    fitted, _ = CLASSIFIER.fit_space(
        space.with_fixed({"scaling": "both"}), read_sequences({"data": waveforms(3, n=90)})
    )
    assert fitted.fixed["scaling"] == "both" and "scaling" not in fitted.first


def test_a_default_sweep_learns_waveform_shapes(workdir):
    """Four shapes a nearest neighbour on six shape statistics tells apart (1.0); each
    sequence has its own level, amplitude, period and length, beside a channel of noise.
    Scaled by the training part, with 160 optimizer steps, a default sweep of such a set
    stayed near chance; its first trial alone must now learn them."""
    shapes = ("triangle", "pulse", "reverse_sawtooth", "staircase")
    waveforms(4, n=120, lengths=(20, 60), seed=3, shapes=shapes).to_csv("w.csv", index=False)
    done = run_cli(workdir, "search", "--task", "classification", "--data", "w.csv",
                   "--trials", "1", timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "first trial's scaling sequence" in done.stdout + done.stderr
    accuracy = float(re.search(r"test_acc = ([\d.]+)", done.stdout).group(1))
    assert accuracy >= 0.9, done.stdout
