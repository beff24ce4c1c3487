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


def classification_sets() -> None:
    from sktime.datasets import load_UCR_UEA_dataset

    for name in UCR:
        parts = [
            load_UCR_UEA_dataset(name, split=part, return_type="numpy3D")
            for part in ("train", "test")
        ]
        X = np.concatenate([x for x, _ in parts]).transpose(0, 2, 1).astype(np.float32)
        y = np.concatenate([y for _, y in parts]).astype(str)
        split = np.array(["train"] * len(parts[0][1]) + ["test"] * len(parts[1][1]))
        np.savez_compressed(HERE / f"{name.lower()}.npz", X=X, y=y, split=split)
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


if __name__ == "__main__":
    classification_sets()
    forecasting_sets()
