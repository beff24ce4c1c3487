"""Regenerate the shipped sequence-classification demo sets (.npz) from the packages that
distribute them. Run once by a maintainer, not at install time.

    python tasks/data/make_classification_data.py --sktime-dir ... --sklearn-dir ...

- japanese_vowels.npz: UEA JapaneseVowels (12 LPC cepstrum channels, lengths 7-29, 9
  speakers), official split: 270 train / 370 test, from sktime's .ts files.
- digits.npz: the 8x8 handwritten digits read as 8-step sequences of 8 pixels (rows), from
  scikit-learn's digits.csv.gz; a fixed stratified split 70% train / 10% val / 20% test.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def _package_dir(name: str, override: str | None) -> Path:
    if override:
        return Path(override)
    return Path(__import__(name).__file__).parent


def read_ts(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """A sktime/UEA .ts file: one case per line, channels split by ':', label last."""
    cases, labels, in_data = [], [], False
    for line in path.read_text().splitlines():
        if not in_data:
            in_data = line.strip().lower() == "@data"
            continue
        if not line.strip():
            continue
        *channels, label = line.split(":")
        series = np.array([[float(v) for v in ch.split(",")] for ch in channels])
        cases.append(series.T.astype(np.float32))  # (T, channels)
        labels.append(label.strip())
    return cases, labels


def make_japanese_vowels(sktime_dir: Path) -> dict[str, np.ndarray]:
    folder = sktime_dir / "datasets" / "data" / "JapaneseVowels"
    train, train_y = read_ts(folder / "JapaneseVowels_TRAIN.ts")
    test, test_y = read_ts(folder / "JapaneseVowels_TEST.ts")
    cases, labels = train + test, train_y + test_y
    lengths = np.array([len(c) for c in cases], dtype=np.int64)
    X = np.zeros((len(cases), lengths.max(), cases[0].shape[1]), dtype=np.float32)
    for i, case in enumerate(cases):
        X[i, : len(case)] = case
    split = np.array(["train"] * len(train) + ["test"] * len(test))
    return {"X": X, "lengths": lengths, "y": np.array(labels), "split": split}


def make_digits(sklearn_dir: Path, seed: int = 0) -> dict[str, np.ndarray]:
    with gzip.open(sklearn_dir / "datasets" / "data" / "digits.csv.gz", "rt") as stream:
        table = np.loadtxt(stream, delimiter=",")
    X = (table[:, :64] / 16.0).reshape(-1, 8, 8).astype(np.float32)  # rows as steps
    y = table[:, 64].astype(np.int64)
    split = np.empty(len(y), dtype="<U5")
    rng = np.random.default_rng(seed)
    for label in np.unique(y):
        index = rng.permutation(np.flatnonzero(y == label))
        n_train, n_val = int(0.7 * len(index)), int(0.1 * len(index))
        split[index[:n_train]] = "train"
        split[index[n_train : n_train + n_val]] = "val"
        split[index[n_train + n_val :]] = "test"
    return {"X": X, "y": y, "split": split}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sktime-dir")
    parser.add_argument("--sklearn-dir")
    args = parser.parse_args()
    vowels = make_japanese_vowels(_package_dir("sktime", args.sktime_dir))
    np.savez_compressed(HERE / "japanese_vowels.npz", **vowels)
    np.savez_compressed(
        HERE / "digits.npz", **make_digits(_package_dir("sklearn", args.sklearn_dir))
    )


if __name__ == "__main__":
    main()
