"""Write the benchmark data sets of `benchmarks/selection.py` from the packages that ship
them (run once; the files it writes are committed, so `make bench` needs neither package):

    python -m venv /tmp/sets && /tmp/sets/bin/pip install sktime==1.2.0 statsmodels==0.15.0
    /tmp/sets/bin/python benchmarks/data/make_sets.py

Classification (UCR / UEA archive copies in the sktime wheel, their official train / test
splits, as `.npz` with X (sequences, steps, features), y and split): ArrowHead, BasicMotions,
GunPoint, OSULeaf. Forecasting (statsmodels' datasets, wide CSVs): co2 (Mauna Loa, weekly,
made monthly means with gaps interpolated) and elnino (monthly sea surface temperature).
Licenses and sources: README.md beside this script.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
UCR = ("ArrowHead", "BasicMotions", "GunPoint", "OSULeaf")
SUITE_UCR = ("ItalyPowerDemand", "ACSF1", "PLAID")  # benchmarks/SUITE.md: reported on
SUITE = HERE / "suite"


def classification_sets(names: tuple[str, ...] = UCR, folder: Path = HERE) -> None:
    """Each set as X (sequences, steps, features; zero-padded where lengths differ, with
    `lengths`), y and the archive's split."""
    from sktime.datasets import load_UCR_UEA_dataset

    for name in names:
        parts = [
            load_UCR_UEA_dataset(name, split=part, return_type="nested_univ")
            for part in ("train", "test")
        ]
        rows = [[np.asarray(cell, dtype=np.float32) for cell in row]
                for frame, _ in parts for row in frame.itertuples(index=False)]  # fmt: skip
        lengths = np.array([len(row[0]) for row in rows])
        X = np.zeros((len(rows), lengths.max(), len(rows[0])), dtype=np.float32)
        for i, row in enumerate(rows):
            X[i, : lengths[i]] = np.stack(row, axis=1)
        y = np.concatenate([y for _, y in parts]).astype(str)
        split = np.array(["train"] * len(parts[0][1]) + ["test"] * len(parts[1][1]))
        np.savez_compressed(folder / f"{name.lower()}.npz", X=X, lengths=lengths, y=y,
                            split=split)  # fmt: skip
        print(f"{name}: X {X.shape}, {len(set(y))} classes, {len(parts[0][1])} train")


def forecasting_sets() -> None:
    import statsmodels.api as sm

    weekly = sm.datasets.co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean().interpolate()
    pd.DataFrame({"ds": monthly.index.date, "co2": monthly.round(3).to_numpy()}).to_csv(
        HERE / "co2.csv", index=False
    )
    wide = sm.datasets.elnino.load_pandas().data
    months = wide.columns[1:]
    sst = wide.melt(id_vars="YEAR", value_vars=list(months), var_name="month", value_name="sst")
    sst["ds"] = pd.to_datetime(
        sst["YEAR"].astype(int).astype(str) + "-" + sst["month"], format="%Y-%b"
    )
    sst.sort_values("ds")[["ds", "sst"]].to_csv(HERE / "elnino.csv", index=False)
    print(f"co2: {len(monthly)} months; elnino: {len(sst)} months")


def suite_series() -> None:
    """benchmarks/SUITE.md's forecasting sets from statsmodels and sktime, as long CSVs
    (unique_id, ds, y); years written as dates (1700-01-01), so they read as yearly."""
    import statsmodels.api as sm
    from sktime.datasets import load_lynx
    from statsmodels.datasets import elec_equip

    co2 = sm.datasets.co2.load_pandas().data["co2"].interpolate()
    sunspots = sm.datasets.sunspots.load_pandas().data
    nile = sm.datasets.nile.load_pandas().data
    lynx = load_lynx()
    equip = elec_equip.load().data.iloc[:, 0]
    macro = sm.datasets.macrodata.load_pandas().data
    quarters = pd.PeriodIndex.from_fields(
        year=macro.year.astype(int), quarter=macro.quarter.astype(int), freq="Q"
    ).to_timestamp()
    belts = pd.read_csv(_sktime_file("seatbelts/seatbelts.csv"))
    sets = {
        "co2_weekly": _long("co2", co2.index, co2.round(3)),
        "sunspots": _long("sunspots", _years(sunspots.YEAR), sunspots.SUNACTIVITY),
        "nile": _long("nile", _years(nile.year), nile.volume),
        "lynx": _long("lynx", _years(lynx.index.year), lynx.to_numpy()),
        "elec_equip": _long("elec_equip", equip.index, equip.round(3)),
        "macrodata": pd.concat(
            [_long(name, quarters, macro[name]) for name in ("realgdp", "cpi", "unemp")]
        ),
        "seatbelts": _long("ksi", pd.to_datetime(belts.iloc[:, 0]), belts["KSI"]),
    }
    for name, frame in sets.items():
        frame.to_csv(SUITE / f"{name}.csv", index=False)
        print(f"{name}: {len(frame)} rows, {frame.unique_id.nunique()} series")


def _years(years: object) -> pd.DatetimeIndex:
    return pd.to_datetime([f"{int(year)}-01-01" for year in years])


def _long(uid: str, ds: object, y: object) -> pd.DataFrame:
    dates = pd.DatetimeIndex(ds).strftime("%Y-%m-%d")
    return pd.DataFrame({"unique_id": uid, "ds": dates, "y": np.asarray(y, dtype=float)})


def _sktime_file(relative: str) -> Path:
    import sktime

    return Path(sktime.__file__).parent / "datasets" / "data" / relative


if __name__ == "__main__":
    classification_sets()
    forecasting_sets()
    SUITE.mkdir(exist_ok=True)
    classification_sets(SUITE_UCR, SUITE)
    suite_series()
