"""Regenerate the shipped forecasting demo CSVs from the packages that distribute them.

Run once by a maintainer (not at install time): needs `sktime` and `statsmodels`
importable, or their wheels unpacked and named with --sktime-dir / --statsmodels-dir.

    python tasks/data/make_demo_data.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
MACRO_SERIES = ("realgdp", "realcons", "realinv", "realgovt")


def _package_dir(name: str, override: str | None) -> Path:
    if override:
        return Path(override)
    module = __import__(name)
    return Path(module.__file__).parent


def make_air_passengers(sktime_dir: Path) -> pd.DataFrame:
    """Wide format: one time column, one target column."""
    raw = pd.read_csv(sktime_dir / "datasets" / "data" / "Airline" / "Airline.csv")
    months = pd.PeriodIndex(raw["Date"], freq="M").to_timestamp()
    return pd.DataFrame({"month": months.strftime("%Y-%m-%d"), "passengers": raw["Passengers"]})


def make_us_macro(statsmodels_dir: Path) -> pd.DataFrame:
    """Long format (unique_id, ds, y), as NeuralForecast users keep their series."""
    raw = pd.read_csv(statsmodels_dir / "datasets" / "macrodata" / "macrodata.csv")
    quarters = pd.PeriodIndex.from_fields(year=raw["year"], quarter=raw["quarter"], freq="Q")
    ds = quarters.to_timestamp().strftime("%Y-%m-%d")
    parts = [pd.DataFrame({"unique_id": name, "ds": ds, "y": raw[name]}) for name in MACRO_SERIES]
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sktime-dir", help="folder of the unpacked sktime package")
    parser.add_argument("--statsmodels-dir", help="folder of the unpacked statsmodels package")
    args = parser.parse_args()
    air = make_air_passengers(_package_dir("sktime", args.sktime_dir))
    air.to_csv(HERE / "air_passengers.csv", index=False)
    macro = make_us_macro(_package_dir("statsmodels", args.statsmodels_dir))
    macro.to_csv(HERE / "us_macro.csv", index=False)


if __name__ == "__main__":
    main()
